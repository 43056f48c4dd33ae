"""``posterforge.plugin`` is the whole API for plugins: the first-party families, the example
plugin and the ``plugins new`` template import nothing else of the core, every name it offers
resolves, and importing it stays cheap."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import posterforge.plugin as api

from .conftest import ROOT

TEMPLATES = ROOT / "posterforge" / "templates" / "plugin"
PLUGIN_SOURCES = sorted(
    [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "docs" / "examples").rglob("*.py")]
)
TEMPLATE_SOURCES = sorted(TEMPLATES.rglob("*.py.tmpl"))


def core_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``posterforge`` module other than
    ``posterforge.plugin``, anywhere in the code (inside functions and TYPE_CHECKING too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from posterforge import plugins` imports the module posterforge.plugins
            modules = [node.module]
            if node.module == "posterforge":
                modules = [f"posterforge.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if (module == "posterforge" or module.startswith("posterforge.")) and (
                module != "posterforge.plugin"
            ):
                found.append((node.lineno, module))
    return found


def test_the_checker_sees_every_way_of_importing_the_core():
    source = (
        "import posterforge\n"
        "from posterforge import plugins, plugin\n"
        "def f():\n"
        "    from posterforge.weights import Weights\n"
        "if TYPE_CHECKING:\n"
        "    import posterforge.labels\n"
        "from posterforge.plugin import Translator\n"
        "from posterforge_toon import filters\n"
    )
    assert core_imports(source) == [
        (1, "posterforge"),
        (2, "posterforge.plugins"),
        (4, "posterforge.weights"),
        (6, "posterforge.labels"),
    ]


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_plugin_api(path: Path):
    assert core_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", TEMPLATE_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_plugin_template_imports_only_the_plugin_api(path: Path):
    # the templates are string.Template text: fill the placeholders as `plugins new` does
    from string import Template

    from posterforge.plugin_template import look_for, plugin_names

    names = plugin_names("posterforge-sepia")
    values = {**dataclasses.asdict(names), **look_for(names)}
    text = Template(path.read_text(encoding="utf-8")).substitute(values)
    assert core_imports(text) == []


def test_the_sources_checked_include_every_first_party_family():
    packages = {
        p.relative_to(ROOT).parts[1] for p in PLUGIN_SOURCES if p.is_relative_to(ROOT / "plugins")
    }
    assert {"posterforge_cyclegan", "posterforge_genre_cgan", "posterforge_stylegan"} <= packages
    assert any(p.name == "__init__.py" and "posterforge_toon" in p.parts for p in PLUGIN_SOURCES)
    assert TEMPLATES / "package" / "__init__.py.tmpl" in TEMPLATE_SOURCES


def test_every_exported_name_resolves():
    assert api.__all__ == sorted(set(api.__all__))
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert api.Translator.__module__ == "posterforge.models"
    assert api.ship_weights.__name__ == "ship" and callable(api.distributed.world_size)
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError, match="has no attribute 'nonesuch'"):
        api.nonesuch  # noqa: B018


def test_the_type_checking_imports_name_the_same_objects():
    """The ``if TYPE_CHECKING:`` imports (what type checkers see) list exactly ``__all__``, each
    from the module the lazy look-up imports it from."""
    tree = ast.parse(Path(api.__file__).read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            seen[alias.asname or alias.name] = (node.module, alias.name)
    assert sorted(seen) == api.__all__
    for name, (module, attr) in seen.items():
        lazy_module, lazy_attr = api._EXPORTS[name]
        if lazy_attr:
            assert (module, attr) == (lazy_module, lazy_attr), name
        else:  # a module itself: `from package import module`
            assert f"{module}.{attr}" == lazy_module, name


def test_importing_the_api_imports_no_torch():
    code = (
        "import sys\n"
        "import posterforge.plugin as p\n"
        "from posterforge.plugin import Family, Kind, Translator, hookimpl, shipped\n"
        "dir(p)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'posterforge.training.harness' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_plugins_page_lists_every_name():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    missing = [name for name in api.__all__ if f"`{name}`" not in text]
    assert not missing, f"docs/plugins.md does not list {missing}"
