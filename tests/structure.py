"""What the source tree looks like from above: the import graph of posterforge/ and plugins/
(imports inside functions included, ``if TYPE_CHECKING:`` blocks left out), and the size of every
file and function. tests/test_structure.py holds the tree to its rules."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"posterforge": ROOT / "posterforge"} | {
    p.name: p for p in sorted((ROOT / "plugins").iterdir()) if (p / "__init__.py").is_file()
}


def parse(path: Path) -> ast.Module:
    """The file's syntax tree, parsed once per version of the file: the checks only read it."""
    return _parsed(path, path.stat().st_mtime_ns)


@functools.cache
def _parsed(path: Path, mtime_ns: int) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def module_files() -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its own name)."""
    out = {}
    for name, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [name, *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Names imported at run time: ``a.b`` for ``import a.b``, ``a:b`` for ``from a import b``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            yield from (f"{base}:{a.name}" for a in node.names)
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (a name that is no module of ours is dropped; an
    import of ``a.b.c`` is an edge to ``a.b.c`` only, the way cycles bite at import time)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = parse(path)
        targets = set()
        for name in _imports(tree, module, path.name == "__init__.py"):
            base, _, attr = name.partition(":")
            # ``from a import b``: the module a.b when there is one, else a's attribute b
            target = f"{base}.{attr}" if attr and f"{base}.{attr}" in files else base
            if target in files and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


@dataclass(frozen=True)
class Function:
    module: str
    name: str  # Class.method or function
    lines: int
    params: int


def functions() -> Iterator[Function]:
    """Every function and method: its length in lines and its parameter count (``self`` and
    ``cls`` not counted)."""
    for module, path in module_files().items():
        tree = parse(path)
        todo: list[tuple[ast.AST, str]] = [(tree, "")]
        while todo:
            node, prefix = todo.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    todo.append((child, f"{prefix}{child.name}."))
                elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    a = child.args
                    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
                    params = len([n for n in names if n not in ("self", "cls")])
                    start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    end = child.end_lineno or child.lineno
                    yield Function(module, prefix + child.name, end - start + 1, params)
                    todo.append((child, f"{prefix}{child.name}."))


def file_lines() -> dict[str, int]:
    return {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in module_files().items()}


if __name__ == "__main__":  # a report: python tests/structure.py
    g = import_graph()
    for comp in cycles(g):
        print("cycle:", " <-> ".join(comp))
    for m, n in sorted(file_lines().items(), key=lambda kv: -kv[1]):
        if n > 450:
            print(f"file {m}: {n} lines")
    for f in sorted(functions(), key=lambda f: -f.lines):
        if f.lines > 80:
            print(f"function {f.module}:{f.name}: {f.lines} lines")
    for f in sorted(functions(), key=lambda f: -f.params):
        if f.params > 8:
            print(f"function {f.module}:{f.name}: {f.params} parameters")
    cli = sorted(m for m, ts in g.items() if not m.startswith("posterforge.cli")
                 and any(t.startswith("posterforge.cli") for t in ts))  # fmt: skip
    for m in cli:
        print("core imports the CLI:", m)
