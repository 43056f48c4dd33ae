"""Name -> item look-up for everything plugins register, with aliases, clash reports and
"did you mean".

One :class:`Registry` per registration kind (translators, generators, families, importers, weight
sources, feature extractors, presets of each kind). Each entry remembers the plugin that
registered it, so a clash names both plugins and ``posterforge plugins --json`` can show what
each plugin brought. :func:`resolve` turns a registered ``"module:function"`` reference into the
function, imported only then, so that registering stays free of torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from posterforge.errors import PosterforgeError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    item: T
    aliases: tuple[str, ...]
    plugin: str

    @property
    def cls(self) -> T:  # translators and generators register classes
        return self.item


class Registry(Generic[T]):
    """``check(item)`` raises :class:`PosterforgeError` for an item of the wrong type; the name
    (and aliases) come from the item's ``name`` and ``aliases`` attributes."""

    def __init__(self, kind: str, check: Callable[[object], None] | None = None):
        self.kind, self._check = kind, check
        self._entries: dict[str, Entry[T]] = {}
        self._lookup: dict[str, str] = {}  # name or alias -> name

    def add(self, item: T, plugin: str = "") -> None:
        if self._check is not None:
            self._check(item)
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise PosterforgeError(f"{self.kind} {item!r} has no name")
        aliases = tuple(getattr(item, "aliases", ()))
        for key in (name, *aliases):
            if key in self._lookup:
                other = self._entries[self._lookup[key]]
                if other.item is item:  # registering the same object twice is harmless
                    return
                raise PosterforgeError(
                    f"{self.kind} name {key!r} from plugin {plugin!r} is taken by plugin "
                    f"{other.plugin!r}"
                )
        self._entries[name] = Entry(name, item, aliases, plugin)
        for key in (name, *aliases):
            self._lookup[key] = name

    def get(self, name: str) -> T:
        return self.entry(name).item

    __getitem__ = get

    def find(self, name: str) -> T | None:
        """The item of ``name`` (or an alias), or None."""
        return self._entries[self._lookup[name]].item if name in self._lookup else None

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[self._lookup[name]]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._lookup) from None

    def __contains__(self, name: object) -> bool:
        return name in self._lookup

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    keys = names

    def values(self) -> list[T]:
        return [e.item for e in self]

    def items(self) -> list[tuple[str, T]]:
        return [(e.name, e.item) for e in self]

    def by_plugin(self, plugin: str) -> list[str]:
        return [e.name for e in self if e.plugin == plugin]

    def first(self) -> Entry[T] | None:
        """The entry registered first (plugins load first-party first, then by name)."""
        return next(iter(self._entries.values()), None)


def resolve(ref: Callable[..., Any] | str) -> Callable[..., Any]:
    """``ref`` itself, or the function a ``"module:function"`` string names (imported now)."""
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)
    return ref


def subclass_of(base: type) -> Callable[[object], None]:
    def check(item: object) -> None:
        if not (isinstance(item, type) and issubclass(item, base)):
            raise PosterforgeError(f"{item!r} is not a subclass of {base.__name__}")

    return check


def instance_of(cls: type) -> Callable[[object], None]:
    def check(item: object) -> None:
        if not isinstance(item, cls):
            raise PosterforgeError(f"{item!r} is not a {cls.__name__}")

    return check
