"""``posterforge plugins new``: write a ready-to-install plugin package from a template.

The template files live in ``posterforge/templates/plugin/`` (``string.Template`` text with a
``.tmpl`` suffix; the folder ``package/`` becomes the Python package). Nothing is overwritten.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import asdict, dataclass
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from posterforge.errors import PosterforgeError, UnknownNameError

KINDS = ("translator",)
SUFFIX = ".tmpl"
PREFIX = "posterforge-"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin NAME gives: distribution, Python package, style (entry point and
    translator name), and the translator class."""

    dist: str
    package: str
    style: str
    cls: str


def plugin_names(name: str) -> PluginNames:
    """Check ``name`` and derive the others: ``posterforge-sepia`` -> package
    ``posterforge_sepia``, style ``sepia``, class ``SepiaTranslator``."""
    if not _NAME.fullmatch(name):
        raise PosterforgeError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single - or _ "
            "between them, starting with a letter (e.g. posterforge-sepia)"
        )
    package = name.replace("-", "_")
    if package in reserved_packages() or keyword.iskeyword(package):
        raise PosterforgeError(f"invalid plugin name {name!r}: {package!r} is taken")
    style = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if not style[0].isalpha():
        raise PosterforgeError(f"invalid plugin name {name!r}: {style!r} must start with a letter")
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", style)) + "Translator"
    return PluginNames(name, package, style.replace("_", "-"), cls)


def reserved_packages() -> set[str]:
    """Our own packages: ``posterforge`` and the first-party plugins its distribution names in
    the ``posterforge`` entry-point group."""
    try:
        entry_points = metadata.distribution("posterforge").entry_points
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        entry_points = metadata.EntryPoints(())
    plugins = {
        ep.value.partition(":")[0].split(".")[0] for ep in entry_points if ep.group == "posterforge"
    }
    return {"posterforge", *plugins}


def _files(folder: Traversable, rel: str = "") -> list[tuple[str, Traversable]]:
    out = []
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        path = f"{rel}{item.name}"
        if item.is_dir():
            if item.name != "__pycache__":
                out += _files(item, path + "/")
        elif item.name.endswith(SUFFIX):
            out.append((path[: -len(SUFFIX)], item))
    return out


# The starting look of a new translator, chosen by its name (a sepia style tones, the others
# start grey): (words in the name, what the look is called, the mix doc, the 3x3 mix, a test)
_SEPIA_TEST = '''def test_the_output_is_sepia_toned():
    """Warm: red over green over blue where nothing clips, and mid grey turns brown."""
    y = ${cls}.build(None)(torch.rand(1, 3, 8, 8) * 0.5)
    assert (y[:, 0] >= y[:, 1]).all() and (y[:, 1] >= y[:, 2]).all()
    grey = ${cls}.build(None)(torch.full((1, 3, 1, 1), 0.5)).flatten().tolist()
    assert grey[0] > 0.6 and grey[2] < 0.5'''
_GRAY_TEST = '''def test_the_output_is_gray():
    y = ${cls}.build(None)(torch.rand(1, 3, 8, 8))
    torch.testing.assert_close(y[:, 0], y[:, 1])
    torch.testing.assert_close(y[:, 1], y[:, 2])'''
_LOOKS = (
    (("sepia",), "Sepia tone", "the classic sepia matrix: warm and brown, like an old print",
     "[[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]", _SEPIA_TEST),
    ((), "Grayscale", "every channel the luma, Rec. 601",
     "[[0.299, 0.587, 0.114]] * 3", _GRAY_TEST),
)  # fmt: skip


def look_for(names: PluginNames) -> dict[str, str]:
    """The template values of the starting look that fits the style's name."""
    for words, look, doc, mix, test in _LOOKS:
        if not words or any(w in names.style for w in words):
            return {"look": look, "look_lower": look.lower(), "look_doc": doc, "mix": mix,
                    "look_test": Template(test).substitute(cls=names.cls)}  # fmt: skip
    raise AssertionError("the last look matches every name")


def template_files(kind: str = "translator") -> list[tuple[str, Traversable]]:
    """``(relative output path, template)`` pairs; ``package/`` still to be renamed."""
    if kind not in KINDS:
        raise UnknownNameError("plugin kind", kind, KINDS)
    return _files(resources.files("posterforge") / "templates" / "plugin")


def new_plugin(name: str, dest: Path | str = ".", kind: str = "translator") -> Path:
    """Write a plugin package skeleton into ``dest/name`` and return that folder.

    The folder may exist only if it is empty; no file is ever overwritten.
    """
    names = plugin_names(name)
    files = template_files(kind)
    target = Path(dest).expanduser() / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PosterforgeError(
            f"{target} already exists and is not empty; pick another NAME or --dir"
        )
    values = {**asdict(names), **look_for(names)}
    rendered = []
    for rel, template in files:
        text = Template(template.read_text(encoding="utf-8")).substitute(values)
        parts = rel.split("/")
        if parts[0] == "package":
            parts[0] = names.package
        rendered.append((target.joinpath(*parts), text))
    for path, text in rendered:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as f:  # "x": never overwrite
            f.write(text)
    return target
