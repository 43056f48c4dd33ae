"""Name -> class look-up for translators and generators, with aliases and "did you mean"."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from posterforge.errors import PosterforgeError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    cls: type[T]
    aliases: tuple[str, ...]
    plugin: str


class Registry(Generic[T]):
    def __init__(self, kind: str, base: type[T]):
        self.kind, self.base = kind, base
        self._entries: dict[str, Entry[T]] = {}
        self._lookup: dict[str, str] = {}  # name or alias -> name

    def add(self, cls: type[T], plugin: str = "") -> None:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise PosterforgeError(f"{cls!r} is not a subclass of {self.base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PosterforgeError(f"{cls.__name__} has no name")
        aliases = tuple(getattr(cls, "aliases", ()))
        for key in (name, *aliases):
            if key in self._lookup:
                other = self._entries[self._lookup[key]]
                if other.cls is cls:  # registering the same class twice is harmless
                    return
                raise PosterforgeError(
                    f"{self.kind} name {key!r} from plugin {plugin!r} is taken by plugin "
                    f"{other.plugin!r}"
                )
        self._entries[name] = Entry(name, cls, aliases, plugin)
        for key in (name, *aliases):
            self._lookup[key] = name

    def get(self, name: str) -> type[T]:
        return self.entry(name).cls

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
