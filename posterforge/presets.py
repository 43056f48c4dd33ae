"""Presets are data (TOML) under ``presets/``: styles, the genre list, training recipes.

In a built wheel they live in ``posterforge/presets``; in a source checkout (editable install)
they are read from the repository's top-level ``presets/`` folder.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from posterforge.errors import PosterforgeError, UnknownNameError


@cache
def root() -> Traversable:
    packaged = resources.files("posterforge") / "presets"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "presets"
    if checkout.is_dir():
        return checkout
    raise PosterforgeError("posterforge presets are missing from this installation")


def names(kind: str) -> list[str]:
    """Preset names in one folder, e.g. ``names("styles")``."""
    folder = root() / kind
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load(kind: str, name: str) -> dict[str, Any]:
    """One preset as a dict, e.g. ``load("train", "anime")``."""
    item = root() / kind / f"{name}.toml"
    if not item.is_file():
        raise UnknownNameError(f"{kind} preset", name, names(kind))
    try:
        return tomllib.loads(item.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise PosterforgeError(f"preset {kind}/{name}.toml: {e}") from None


def load_file(name: str) -> dict[str, Any]:
    """A top-level preset file such as ``genres.toml``."""
    item = root() / f"{name}.toml"
    if not item.is_file():
        raise PosterforgeError(f"preset {name}.toml is missing from this installation")
    return tomllib.loads(item.read_text(encoding="utf-8"))


def genres() -> list[str]:
    """The genre list that generators are conditioned on, in label order."""
    return list(load_file("genres")["genres"])


def genre_aliases() -> dict[str, str]:
    """Other spellings of genre names (``musical`` -> ``music``)."""
    return dict(load_file("genres").get("aliases", {}))
