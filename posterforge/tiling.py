"""Images larger than memory: decided from the header, before a pixel is decoded, then run whole,
run in overlapping tiles with blended seams, or refused in one line (issue 23).

The memory budget is ``POSTERFORGE_MEMORY_BUDGET`` (bytes, or ``500M``, ``8G``) or else half of
this machine's physical memory (half of the GPU's on CUDA), and at most a third of the
process's address-space limit where ``ulimit -v`` sets one: a fixed number per machine and
limit, so a re-run tiles the same way and writes the same bytes. What an image costs is
estimated, not measured per image:

- the model's activations at this model and precision, in bytes per pixel of its input: the
  largest output of any layer on a small probe frame (:func:`activation_bytes`), times
  :data:`LIVE_TENSORS` (a layer's input, its output and a residual are alive at once), plus the
  float frame in and out;
- the frame in memory beside it: :data:`HOST_WHOLE` bytes per pixel for a frame run whole (the
  decoded RGB and its float copy, the uint8 result and its encoding), :data:`HOST_TILED` for a
  tiled one (also the float sum of the blended tiles and their weights), and 12 more per pixel of
  ``--size``'s resized frame.

A frame whose whole run fits is run whole, as before. One that does not is cut into square
tiles of the largest side that fits (a multiple of the model's, at least :data:`MIN_TILE`),
placed evenly with at least :data:`OVERLAP` pixels of overlap; each tile's output is weighted by
a ramp that falls from 1 to near 0 over the :data:`OVERLAP` pixels at each edge shared with a
neighbour, and the sums are divided by the summed weights. Tiles see less context than the whole
frame (and instance norm its own statistics), so a tiled output is close to, not equal to, the
untiled one (tests/test_tiling.py states by how much). A frame for which even the smallest tile
does not fit is refused: ``PATH: 300x200 needs about 3.6 MiB at this model and precision, more
than the memory budget of 3.0 MiB (POSTERFORGE_MEMORY_BUDGET); about 228x152 fits (try --size
152)`` (the tiny test translator).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from posterforge.errors import PosterforgeError
from posterforge.images import ImageError

if TYPE_CHECKING:
    import torch

    from posterforge.engine import Engine

BUDGET_ENV = "POSTERFORGE_MEMORY_BUDGET"
LIVE_TENSORS = 3
HOST_WHOLE = 24  # uint8 RGB in (3) + its float copy (12) + uint8 out (3) + encoding (3) + slack
HOST_TILED = 40  # HOST_WHOLE + the blended float sum (12) and weights (4)
RESIZED = 12  # the float frame at --size, per pixel of it
OVERLAP = 32  # pixels that neighbouring tiles share, blended
MIN_TILE = 4 * OVERLAP
PROBE_SIDE = 64
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``123``, ``500M``, ``8G``, ``1.5GiB`` -> bytes; raises :class:`PosterforgeError`."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text, re.IGNORECASE)
    if m is None or float(m[1]) <= 0:
        raise PosterforgeError(
            f"{BUDGET_ENV}={text!r}: give bytes, or a number with K, M, G or T (e.g. 4G)"
        )
    return int(float(m[1]) * _UNITS[m[2].upper()])


def memory_budget(device: torch.device | None = None) -> int:
    """Bytes a frame may cost: :data:`BUDGET_ENV`, else half of the physical memory (of the GPU
    on CUDA), never more than a third of an address-space limit."""
    if text := os.environ.get(BUDGET_ENV, "").strip():
        return parse_bytes(text)
    if device is not None and device.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory // 2
    try:
        budget = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, OSError, ValueError):
        budget = 4 * 2**30
    return min(budget, _address_space_share())


def _address_space_share() -> int:
    """A third of the process's address-space limit (``ulimit -v``), if it has one: torch's
    libraries map gigabytes of it before any frame, so half the RAM can be more than is left."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return soft // 3 if soft != resource.RLIM_INFINITY and soft > 0 else 2**62


def activation_bytes(engine: Engine) -> float:
    """The model's memory per input pixel at its precision: the largest output of any layer on
    a small probe frame, per pixel, times :data:`LIVE_TENSORS`, plus the float frame in and out
    (fp32, 3 channels each)."""
    import torch

    from posterforge.engine import padded_size

    side = padded_size(PROBE_SIDE, PROBE_SIDE, engine.multiple, engine.min_size)[0]
    largest = 0

    def hook(_module: object, _args: object, out: object) -> None:
        nonlocal largest
        outs = out if isinstance(out, tuple | list) else (out,)
        size = sum(t.numel() * t.element_size() for t in outs if isinstance(t, torch.Tensor))
        largest = max(largest, size)

    handles = [m.register_forward_hook(hook) for m in engine.module.modules()]
    try:
        x = torch.zeros(1, 3, side, side, device=engine.device)
        with torch.inference_mode(), engine._autocast():
            engine.module(x)
    finally:
        for h in handles:
            h.remove()
    return LIVE_TENSORS * largest / (side * side) + 2 * 3 * 4


@dataclass(frozen=True)
class Fit:
    """How one frame is run: whole (``tile`` None) or in square tiles of ``tile`` pixels."""

    tile: int | None = None


class Footprint:
    """What frames cost at one engine and budget; :meth:`fit` decides from the size alone."""

    def __init__(self, engine: Engine, budget: int | None = None):
        self.multiple = max(1, engine.multiple)
        self.per_pixel = activation_bytes(engine)
        self.budget = memory_budget(engine.device) if budget is None else budget

    def need(self, w: int, h: int, model: tuple[int, int] | None = None) -> int:
        """Bytes to run a ``w`` x ``h`` frame whole (``model``: its size at --size)."""
        mw, mh = model or (w, h)
        resized = RESIZED * mw * mh if model else 0
        return int(HOST_WHOLE * w * h + resized + self.per_pixel * mw * mh)

    def fit(self, path: object, w: int, h: int, model: tuple[int, int] | None = None) -> Fit:
        """Whole, tiled, or an :class:`ImageError` naming ``path``, the size, the budget and a
        size that fits."""
        if self.need(w, h, model) <= self.budget:
            return Fit()
        mw, mh = model or (w, h)
        host = HOST_TILED * w * h + (RESIZED * mw * mh if model else 0)
        left = self.budget - host
        side = math.isqrt(int(max(0, left) / self.per_pixel)) if left > 0 else 0
        side -= side % self.multiple
        if side >= MIN_TILE:
            return Fit(tile=side)
        raise ImageError(str(path), self.refusal(w, h, model))

    def refusal(self, w: int, h: int, model: tuple[int, int] | None) -> str:
        mw, mh = model or (w, h)
        need = HOST_TILED * w * h + self.per_pixel * MIN_TILE**2
        room = self.budget - self.per_pixel * MIN_TILE**2
        scale = math.sqrt(max(0.0, room) / (HOST_TILED * w * h + RESIZED * mw * mh))
        fw, fh = max(1, int(w * scale)), max(1, int(h * scale))
        fits = f"about {fw}x{fh} fits (try --size {min(fw, fh)})" if room > 0 else "nothing fits"
        return (
            f"{w}x{h} needs about {_gib(need)} at this model and precision, more than the memory "
            f"budget of {_gib(self.budget)} ({BUDGET_ENV}); {fits}"
        )


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def spans(n: int, tile: int, overlap: int = OVERLAP) -> list[int]:
    """Starts of tiles of ``tile`` covering ``0..n``, evenly placed, neighbours sharing at least
    ``overlap`` (one tile when it covers ``n``)."""
    if n <= tile:
        return [0]
    count = math.ceil((n - overlap) / (tile - overlap))
    return [round(i * (n - tile) / (count - 1)) for i in range(count)]


def ramp(length: int, lead: bool, trail: bool, overlap: int = OVERLAP) -> torch.Tensor:
    """A tile's weights along one axis: 1, falling towards 0 over ``overlap`` pixels at an edge
    shared with a neighbour (``lead``: the start, ``trail``: the end)."""
    import torch

    w = torch.ones(length)
    edge = (torch.arange(min(overlap, length)) + 0.5) / overlap
    if lead:
        w[: len(edge)] = torch.minimum(w[: len(edge)], edge)
    if trail:
        w[length - len(edge) :] = torch.minimum(w[length - len(edge) :], edge.flip(0))
    return w


def tiled_forward(engine: Engine, x: torch.Tensor, tile: int) -> torch.Tensor:
    """``engine.forward`` of one frame ``(1, 3, H, W)`` in blended tiles of ``tile`` pixels:
    the same shape out, on the CPU, float."""
    import torch

    _, c, h, w = x.shape
    th, tw = min(tile, h), min(tile, w)
    rows, cols = spans(h, th), spans(w, tw)
    total = torch.zeros(1, c, h, w)
    weight = torch.zeros(1, 1, h, w)
    for i, y0 in enumerate(rows):
        wy = ramp(th, i > 0, i < len(rows) - 1)
        for j, x0 in enumerate(cols):
            wx = ramp(tw, j > 0, j < len(cols) - 1)
            part = x[:, :, y0 : y0 + th, x0 : x0 + tw].contiguous()
            with torch.inference_mode():
                y = engine.forward(part).float().cpu()
            wt = (wy[:, None] * wx[None, :])[None, None]
            total[:, :, y0 : y0 + th, x0 : x0 + tw].addcmul_(y, wt)
            weight[:, :, y0 : y0 + th, x0 : x0 + tw].add_(wt)
    return total.div_(weight)
