"""Optional capabilities of a built generator (:class:`~posterforge.models.LatentGenerator`,
:class:`~posterforge.models.StyleMixer`): a command that needs one asks :func:`require`, which
refuses a family without it in one line naming the capability, before any work."""

from __future__ import annotations

from typing import Any, TypeVar

from posterforge.errors import PosterforgeError

T = TypeVar("T")


class MissingCapability(PosterforgeError):
    """A model whose family lacks what a command needs (``mix`` on the genre cGAN, say)."""


def require(
    module: Any,
    protocol: type[T],
    capability: str,
    model_name: str,
    *,
    verb: str = "",
    family: str = "",
) -> T:
    """``module`` itself when it satisfies ``protocol``; else one line: ``model 'X' (family Y)
    cannot <verb>: it has no <capability>``. ``verb`` defaults to "do this"; ``family`` to the
    module's class name."""
    if isinstance(module, protocol):
        return module
    family = family or type(module).__name__
    raise MissingCapability(
        f"model {model_name!r} (family {family}) cannot {verb or 'do this'}: "
        f"it has no {capability}"
    )
