"""Frame sizes: ``--size`` (:class:`Size`), the memory a batch at that size needs, and the batched
resize on the device that translate and video translation share."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    import torch

MAX_SIDE = 16384  # pixels per side that --size may ask for (the float batch grows with its square)


@dataclass(frozen=True)
class Size:
    """``--size``: ``N`` scales the shorter side to N (aspect kept); ``WxH`` is exact.

    Each number is at most :data:`MAX_SIDE`.
    """

    width: int | None = None
    height: int | None = None
    short: int | None = None

    @classmethod
    def parse(cls, text: str) -> Size:
        if m := re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text):
            w, h = int(m[1]), int(m[2])
            if w > 0 and h > 0:
                return cls(width=w, height=h)._bounded(text)
        elif (m := re.fullmatch(r"\s*(\d+)\s*", text)) and int(m[1]) > 0:
            return cls(short=int(m[1]))._bounded(text)
        raise PosterforgeError(f"invalid size {text!r}: use N (shorter side) or WxH, e.g. 1280x720")

    def _bounded(self, text: str) -> Size:
        if max(self.width or 0, self.height or 0, self.short or 0) > MAX_SIDE:
            raise PosterforgeError(f"invalid size {text!r}: at most {MAX_SIDE} pixels per side")
        return self

    def check_memory(self, batch_size: int, available: int | None = None) -> None:
        """Raise if one float batch at this size would not fit in the memory available now.

        For ``N`` the batch is at least N x N per image. The network needs several times more, so
        passing is no promise; failing means the run could never have worked.
        """
        if available is None:
            available = available_memory()
        w, h = (self.width, self.height) if self.short is None else (self.short, self.short)
        assert w and h
        need = batch_size * 3 * w * h * 4  # float32 (B, 3, H, W)
        if available is not None and need > available:
            text = f"{w}x{h}" if self.short is None else f"{self.short}"
            raise PosterforgeError(
                f"--size {text}: a batch of {batch_size} float image(s) needs at least "
                f"{need / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB of memory "
                "available; use a smaller --size or --batch-size"
            )

    def target(self, w: int, h: int) -> tuple[int, int]:
        """(W, H) for an input of (w, h)."""
        if self.short is None:
            assert self.width and self.height
            return self.width, self.height
        scale = self.short / min(w, h)
        return max(1, round(w * scale)), max(1, round(h * scale))


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux: MemAvailable), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def resize(x: torch.Tensor, size: Size) -> torch.Tensor:
    """Batched resize on the device (kornia, antialiased when shrinking)."""
    import kornia

    h, w = x.shape[-2:]
    tw, th = size.target(w, h)
    if (tw, th) == (w, h):
        return x
    return kornia.geometry.transform.resize(x, (th, tw), interpolation="bilinear", antialias=True)
