"""Exceptions a user can act on. The CLI turns each into one line on stderr and an exit code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PosterforgeError(Exception):
    """Base of every error posterforge raises on purpose; the message is shown as is."""


class UnknownNameError(PosterforgeError, LookupError):
    """A style, translator, generator or weight name that nothing provides."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, show_all: bool = False):
        """``show_all``: list every known name even when a close match is suggested (for short,
        fixed lists such as the genres)."""
        self.kind, self.name = kind, name
        self.known = sorted(set(known))
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.6)
        if close:
            hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
            if show_all:
                hint += " valid: " + ", ".join(self.known)
        elif self.known:
            hint = ("valid: " if show_all else "known: ") + ", ".join(self.known)
        else:
            hint = f"no {kind}s are available"
        super().__init__(f"unknown {kind} {name!r}: {hint}")


class WeightsError(PosterforgeError):
    """A weight file that is missing, unreadable, unsafe or does not match what was expected."""
