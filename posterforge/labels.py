"""Label names (the genres) by name, never by a bare index: lookup, aliases, mixes.

``LabelSet(names)`` is what a conditional generator declares; ``vector("horror+comedy")`` is the
conditioning a user asks for. Imports no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from posterforge.errors import PosterforgeError, UnknownNameError


def normalise(name: str) -> str:
    """``"Sci Fi"``, ``"sci_fi"`` and ``" SCI-FI "`` are all ``"sci-fi"``."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


@dataclass(frozen=True)
class LabelSet:
    names: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate label names in {self.names}")

    @classmethod
    def genres(cls, names: Sequence[str] | None = None) -> LabelSet:
        """The genre labels (``presets/genres.toml`` unless ``names``) with the preset aliases
        that point at one of them."""
        from posterforge import presets

        names = list(names) if names is not None else presets.genres()
        aliases = {normalise(k): v for k, v in presets.genre_aliases().items() if v in names}
        return cls(tuple(names), aliases)

    def __len__(self) -> int:
        return len(self.names)

    def find(self, name: str) -> int | None:
        """The index of ``name`` (any spelling or alias), or None."""
        key = normalise(name)
        key = self.aliases.get(key, key)
        by_name = {normalise(n): i for i, n in enumerate(self.names)}
        return by_name.get(key)

    def index(self, name: str) -> int:
        """Like :meth:`find`, but an unknown name raises an error that lists the valid ones."""
        i = self.find(name)
        if i is None:
            raise UnknownNameError("genre", name, self.names, show_all=True)
        return i

    def vector(self, spec: str) -> list[float]:
        """The label vector for ``spec``: one name (``horror``), a mix of names with equal weight
        (``horror+comedy``), or weighted (``horror:0.7+comedy:0.3``)."""
        out = [0.0] * len(self.names)
        parts = [p for p in spec.split("+") if p.strip()]
        if not parts:
            raise PosterforgeError(f"invalid genre {spec!r}: name one of {', '.join(self.names)}")
        for part in parts:
            name, _, weight = part.partition(":")
            try:
                w = float(weight) if weight.strip() else 1.0
            except ValueError:
                raise PosterforgeError(f"invalid weight in genre {spec!r}: {weight!r}") from None
            if not 0.0 <= w <= 1.0:
                raise PosterforgeError(f"genre weight must be in [0, 1]: {part!r}")
            out[self.index(name)] += w
        return out

    def caption(self, spec: str) -> str:
        """The canonical spelling of ``spec`` for file names and captions (``horror+comedy``)."""
        parts = []
        for part in spec.split("+"):
            if part.strip():
                name, sep, weight = part.partition(":")
                canon = self.names[self.index(name)]
                parts.append(f"{canon}:{float(weight):g}" if sep and weight.strip() else canon)
        return "+".join(parts)
