"""The shape of the source tree (tests/structure.py reads it): no import circle, no core module
that imports the CLI or a model family, small files and functions, few parameters."""

from __future__ import annotations

import ast

from tests.structure import (
    PACKAGES,
    cycles,
    file_lines,
    functions,
    import_graph,
    module_files,
    parse,
)

MAX_FILE, MAX_FUNCTION, MAX_PARAMS = 450, 80, 8
FAMILIES = tuple(name for name in PACKAGES if name != "posterforge")

# Job constructors: a job's own classmethod, and the Python API functions whose keywords are a
# job's fields by design (tests in test_run_layer.py and test_train_jobs.py keep them equal).
JOB_CONSTRUCTORS = {
    "posterforge.api:translate",
    "posterforge.api:generate",
    "posterforge.latent_api:project",
    "posterforge.latent_api:mix",
    "posterforge.latent_api:morph",
    "posterforge.api:train",
    "posterforge.api:evaluate",
    "posterforge.jobs.train:TrainJob.create",
}


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_core_imports_neither_the_cli_nor_a_family():
    graph = import_graph()
    entry = {"posterforge.__main__"}  # the console entry point is the CLI's
    for module, targets in graph.items():
        if not module.startswith("posterforge") or module.startswith(FAMILIES):
            continue
        if not module.startswith("posterforge.cli") and module not in entry:
            assert not [t for t in targets if t.startswith("posterforge.cli")], module
        assert not [t for t in targets if t.startswith(FAMILIES)], module


def test_the_core_names_no_family_outside_its_docs():
    """No string in the core's code (docstrings aside) names a first-party family's package."""
    for module, path in module_files().items():
        if module.startswith(FAMILIES):
            continue
        tree = parse(path)
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        named = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and any(f in node.value for f in (*FAMILIES, "vintagify"))
        ]
        assert not named, (module, named)


def test_files_are_small():
    big = {m: n for m, n in file_lines().items() if n > MAX_FILE}
    assert big == {}


def test_functions_are_short_and_take_few_parameters():
    long = [f"{f.module}:{f.name} ({f.lines} lines)" for f in functions() if f.lines > MAX_FUNCTION]
    wide = [
        f"{f.module}:{f.name} ({f.params} parameters)"
        for f in functions()
        if f.params > MAX_PARAMS and f"{f.module}:{f.name}" not in JOB_CONSTRUCTORS
    ]
    assert long == [] and wide == []
