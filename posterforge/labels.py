"""Label names by name, never by a bare index: lookup, aliases, mixes. A small helper that any
conditional family can use (the poster families use it for genres).

``LabelSet(names)`` is what a conditional generator declares; ``vector("horror+comedy")`` is the
conditioning a user asks for. Imports no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from posterforge.errors import PosterforgeError, UnknownNameError


def normalise(name: str) -> str:
    """``"Sci Fi"``, ``"sci_fi"`` and ``" SCI-FI "`` are all ``"sci-fi"``."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


@dataclass(frozen=True)
class LabelSet:
    """Label names in slot order, other spellings (``aliases``) and what one label is called in
    messages (``noun``: "genre" for the poster vocabularies). ``counts``, when known, is how many
    training images each label had (a model's, from its weight file): a label with none is
    refused by :meth:`parse`, since the model never learnt it."""

    names: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    noun: str = "label"
    counts: Mapping[str, int] | None = None
    _slots: dict[str, int] = field(init=False, repr=False, compare=False)  # normalised -> slot

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate label names in {self.names}")
        slots = {normalise(n): i for i, n in enumerate(self.names)}
        object.__setattr__(self, "_slots", slots)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], names: Sequence[str] | None = None) -> LabelSet:
        """From a vocabulary (``names``, ``noun``, ``aliases``: a label preset or a weight
        header); ``names`` overrides the list and keeps the aliases that point at one of them."""
        names = list(names) if names is not None else list(data["names"])
        aliases = {normalise(k): v for k, v in dict(data.get("aliases", {})).items() if v in names}
        return cls(tuple(names), aliases, str(data.get("noun", "label")))

    def as_dict(self) -> dict[str, Any]:
        """What :meth:`from_dict` reads back (stored in weight headers)."""
        return {"names": list(self.names), "noun": self.noun, "aliases": dict(self.aliases)}

    def __len__(self) -> int:
        return len(self.names)

    def find(self, name: str) -> int | None:
        """The index of ``name`` (any spelling or alias), or None."""
        key = normalise(name)
        return self._slots.get(self.aliases.get(key, key))

    def index(self, name: str) -> int:
        """Like :meth:`find`, but an unknown name raises an error that lists the valid ones."""
        i = self.find(name)
        if i is None:
            raise UnknownNameError(self.noun, name, self.names, show_all=True)
        return i

    def parse(self, spec: str) -> list[tuple[int, float | None]]:
        """``spec`` as ``(slot, weight)`` pairs: one name (``horror``), a mix with equal weights
        (``horror+comedy``) or weighted (``horror:0.7+comedy:0.3``; weight None when not given).
        An empty part, a label named twice or weights that are all zero are refused."""
        noun = self.noun
        parts = spec.split("+")
        if not spec.strip() or any(not p.strip() for p in parts):
            raise PosterforgeError(
                f"invalid {noun} {spec!r}: name one of {', '.join(self.names)}, "
                f"or a mix such as {self.names[0]}+{self.names[-1]}"
            )
        out: list[tuple[int, float | None]] = []
        for part in parts:
            name, sep, weight = part.partition(":")
            w: float | None = None
            if sep:
                try:
                    w = float(weight)
                except ValueError:
                    bad = f"invalid weight in {noun} {spec!r}: {weight!r}"
                    raise PosterforgeError(bad) from None
                if not 0.0 <= w <= 1.0:
                    raise PosterforgeError(f"{noun} weight must be in [0, 1]: {part!r}")
            slot = self.index(name)
            if w != 0.0 and self.counts is not None and self.counts.get(self.names[slot]) == 0:
                trained = [n for n in self.names if self.counts.get(n) != 0]
                raise PosterforgeError(
                    f"{noun} {self.names[slot]!r} had no training images, so this model never "
                    f"learnt it: name one it was trained on ({', '.join(trained)})"
                )
            if any(slot == s for s, _ in out):
                raise PosterforgeError(f"{noun} {self.names[slot]!r} is named twice in {spec!r}")
            out.append((slot, w))
        if all(w == 0.0 for _, w in out):
            raise PosterforgeError(f"the weights of {noun} {spec!r} are all zero")
        return out

    def vector(self, spec: str) -> list[float]:
        """The label vector for ``spec`` (see :meth:`parse`); a name without a weight gets 1."""
        out = [0.0] * len(self.names)
        for slot, w in self.parse(spec):
            out[slot] = 1.0 if w is None else w
        return out

    def caption(self, spec: str) -> str:
        """The canonical spelling of ``spec`` for file names and captions (``horror+comedy``)."""
        return "+".join(
            self.names[slot] if w is None else f"{self.names[slot]}:{w:g}"
            for slot, w in self.parse(spec)
        )


def labels_from_header(
    header: Mapping[str, Any],
    names: Sequence[str] | None = None,
    default: Mapping[str, Any] | None = None,
) -> LabelSet:
    """The label set of a conditional model's weight header: ``names`` (default: its
    ``labels``), the noun and aliases of its ``vocabulary`` (or of ``default``, for files from
    before vocabularies were stored), and the training images per label that a run recorded in
    ``provenance.data.label_counts`` (ignored unless it is a mapping of names to counts)."""
    vocabulary = header.get("vocabulary") or default or {}
    labels = LabelSet.from_dict(vocabulary, names=names if names is not None else header["labels"])
    provenance = header.get("provenance")
    data = provenance.get("data") if isinstance(provenance, Mapping) else None
    counts = data.get("label_counts") if isinstance(data, Mapping) else None
    if not isinstance(counts, Mapping) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in counts.items()
    ):
        return labels
    return replace(labels, counts={n: counts[n] for n in labels.names if n in counts})
