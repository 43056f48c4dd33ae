"""Optional capabilities of a built generator (:class:`~posterforge.models.LatentGenerator`,
:class:`~posterforge.models.StyleMixer`): a command that needs one asks :func:`require` first,
and a family without it is refused in one line, before any work."""

from __future__ import annotations

from typing import Any

from posterforge.errors import PosterforgeError


def require(
    module: Any,
    protocol: type,
    capability: str,
    model_name: str,
    *,
    verb: str = "do this",
    family: str | None = None,
) -> Any:
    """``module`` when it has ``protocol`` (a ``runtime_checkable`` Protocol), else
    :class:`PosterforgeError`: ``model 'X' (family Y) cannot <verb>: it has no <capability>``."""
    if isinstance(module, protocol):
        return module
    fam = f" (family {family})" if family else ""
    raise PosterforgeError(f"model {model_name!r}{fam} cannot {verb}: it has no {capability}")
