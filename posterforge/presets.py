"""Presets are data (TOML) that plugins ship: styles for ``translate`` and label vocabularies for
conditional generators (training recipes belong to a family: see :mod:`posterforge.family`).

A plugin declares a folder through the ``register_presets`` hook; the folder holds one
sub-folder per kind, ``styles/NAME.toml`` and ``labels/NAME.toml``. The first-party plugins keep
theirs in the repository's top-level ``presets/<family>/`` folder, which the wheel carries inside
each plugin package (:func:`shipped` finds it in both layouts).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    from posterforge.labels import LabelSet
    from posterforge.plugins import PluginHost

KINDS = ("styles", "labels")


@dataclass(frozen=True)
class Preset:
    """One preset file, as registered: ``kind`` is a folder name of :data:`KINDS`."""

    kind: str
    name: str
    source: Traversable | Path

    def load(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise PosterforgeError(f"preset {self.kind}/{self.name}.toml: {e}") from None


def scan(folder: Traversable | Path) -> list[Preset]:
    """The presets in a plugin's folder (``styles/*.toml``, ``labels/*.toml``)."""
    if not folder.is_dir():
        raise PosterforgeError(f"preset folder {folder} does not exist")
    found = []
    for kind in KINDS:
        sub = folder / kind
        if sub.is_dir():
            found += [
                Preset(kind, p.name[:-5], p)
                for p in sorted(sub.iterdir(), key=lambda p: p.name)
                if p.name.endswith(".toml")
            ]
    return found


def shipped(package: str, checkout_name: str) -> Traversable:
    """A first-party plugin's preset folder: ``<package>/presets`` in an installed wheel, else
    ``presets/<checkout_name>`` of the source checkout (editable installs)."""
    packaged = resources.files(package) / "presets"
    if packaged.is_dir():
        return packaged
    module_dir = Path(str(resources.files(package)))
    checkout = module_dir.parent.parent / "presets" / checkout_name
    if checkout.is_dir():
        return checkout
    raise PosterforgeError(f"the presets of {package} are missing from this installation")


def names(kind: str, host: PluginHost) -> list[str]:
    """Preset names of one kind that the host's plugins registered, e.g. ``names("styles",
    host)``."""
    return host.presets[kind].names()


def load(kind: str, name: str, host: PluginHost) -> dict[str, Any]:
    """One preset as a dict, e.g. ``load("styles", "vintage", host)``."""
    return host.presets[kind].get(name).load()


def labels(name: str, host: PluginHost) -> LabelSet:
    """A label vocabulary preset (``labels/NAME.toml``: ``names``, optional ``noun`` and
    ``[aliases]``) as a :class:`~posterforge.labels.LabelSet`."""
    from posterforge.labels import LabelSet

    data = load("labels", name, host)
    if not isinstance(data.get("names"), list) or not data["names"]:
        raise PosterforgeError(f"label preset {name!r} has no names list")
    return LabelSet.from_dict(data)
