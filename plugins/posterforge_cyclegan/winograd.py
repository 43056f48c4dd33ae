"""Winograd fast convolution for the residual-block 3x3 convs of the ResNet generator: inference
(:class:`WinogradConv3x3`) and training (:func:`winograd_conv3x3`, differentiable).

Minimal filtering F(m x m, 3 x 3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks"): the output is cut into m x m tiles; each needs an (m+2) x (m+2) input tile d (tiles
overlap by 2). With a = m + 2,

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A        (.) = elementwise, summed over input channels

so a 3x3 conv becomes a*a independent GEMMs of (tiles x Cin) @ (Cin x Cout), i.e. a*a / (m*m*9)
of the direct conv's multiplies: 16/36 = 0.44x for m=2 and 36/144 = 0.25x for m=4. The price is
the transforms (memory traffic, not FLOPs) and, for m=4, some fp32 accuracy (its transform has
entries up to 8 and 1/24).

Layout: every transform is written as one plain GEMM with a Kronecker matrix, acting on data whose
innermost dimension is the channel dimension (channels-last), so that no step needs a small,
strided or batched-of-tiny GEMM and every copy moves contiguous runs of C floats.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

# Transform matrices (Lavin & Gray 2016, section 4.1/4.2), exact in float64. They compute
# *correlation*, which is what nn.Conv2d does, so the kernel is used as is (no flip).
_MATRICES: dict[int, tuple[list[list[float]], list[list[float]], list[list[float]]]] = {
    # m: (B^T (a x a), G (a x 3), A^T (m x a))
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        [
            [1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 0],
            [0, 1, 1, 4, 4, 0],
            [0, 1, -1, 8, -8, 1],
        ],
    ),
}


def _matrices(
    m: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(bt2, kg, at2)`` for tile size ``m``: kron(B^T, B^T) ``(a*a, a*a)``, kron(G, G)
    ``(a*a, 9)`` and kron(A^T, A^T) ``(m*m, a*a)``, built in float64 then cast. Two-sided
    transforms as single matrices acting on a flattened (row, col) tile index:
    (B^T d B) flattened row-major = kron(B^T, B^T) @ vec(d); likewise G g G^T and A^T M A."""
    key = (m, dtype, device)
    if key not in _CACHE:
        bt, g, at = (torch.tensor(x, dtype=torch.float64) for x in _MATRICES[m])
        _CACHE[key] = tuple(  # type: ignore[assignment]
            torch.kron(t, t).to(dtype=dtype, device=device) for t in (bt, g, at)
        )
    return _CACHE[key]


_CACHE: dict[tuple[int, torch.dtype, torch.device], tuple[torch.Tensor, ...]] = {}


def _kernel_transform(weight: torch.Tensor, kg: torch.Tensor) -> torch.Tensor:
    """``(Cout, Cin, 3, 3)`` -> U = G g G^T as ``(a*a, Cin, Cout)``, the GEMMs' right operands.

    One GEMM ``(a*a, 9) @ (9, Cout*Cin)``; U is a transposed view of its result, which bmm reads
    as a column-major matrix without a copy (and whose transpose, for dL/dx, is contiguous)."""
    co, ci = weight.shape[:2]
    # the transposed copy first: a K=9 GEMM reading a transposed operand is ~8x slower
    u = (kg @ weight.reshape(co * ci, 9).T.contiguous()).view(-1, co, ci)
    return u.transpose(1, 2)


def _bands(rows_total: int, row_bytes: int, band_bytes: int) -> list[tuple[int, int]]:
    """Bands of tile rows sized so that one band's transformed tiles stay cache-sized: at
    1280x720 the whole-image buffers are hundreds of MB each, and streaming them through memory
    (and page-faulting them in) costs more than Winograd saves."""
    rows = max(1, band_bytes // row_bytes)
    return [(r0, min(r0 + rows, rows_total)) for r0 in range(0, rows_total, rows)]


def _nhwc_tiles(x: torch.Tensor, m: int) -> torch.Tensor:
    """Padded NCHW ``(B, C, H+2, W+2)`` -> NHWC, zero-extended bottom/right so that m x m output
    tiles cover it exactly. The surplus outputs only ever see the zeros and are cropped (or, for
    gradients, get zero gradient), so they never leak into real values."""
    h, w = x.shape[2] - 2, x.shape[3] - 2
    extra_h, extra_w = -h % m, -w % m
    if extra_h or extra_w:
        x = F.pad(x, (0, extra_w, 0, extra_h))
    return x.permute(0, 2, 3, 1).contiguous()  # channels innermost from here on


class Workspace:
    """Named buffers that consecutive inference convs write into instead of new tensors.

    A 1280x720 frame's residual blocks would otherwise create two ~60 MB tensors per conv, 36
    per frame, and glibc maps each afresh and page-faults it in (unless told to keep freed
    memory, which costs peak memory instead). One pass through the blocks shares a Workspace;
    dropping it afterwards frees the buffers (see ``ResidualBlocks`` in network.py).
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """The buffer ``name`` with this shape (and ``like``'s dtype and device), made if new."""
        buf = self._buffers.get(name)
        if (
            buf is None
            or buf.shape != shape
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            self._buffers.pop(name, None)  # freed before its replacement is allocated
            buf = self._buffers[name] = like.new_empty(shape)
        return buf

    def holds(self, name: str, t: torch.Tensor) -> bool:
        """Whether ``t`` (or a view of it) lives in buffer ``name``."""
        buf = self._buffers.get(name)
        return (
            buf is not None and buf.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
        )


def _reflected_nhwc_tiles(
    x: torch.Tensor, m: int, workspace: Workspace | None = None
) -> torch.Tensor:
    """:func:`_nhwc_tiles` of ``F.pad(x, (1, 1, 1, 1), mode="reflect")`` for unpadded NCHW ``x``
    ``(B, C, H, W)``, written in one pass: no padded NCHW copy exists at any point. With a
    ``workspace``, into its buffer ``"tiles"``."""
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(f"reflection padding by 1 needs H and W >= 2, got {h}x{w}")
    shape = (n, h + 2 + (-h % m), w + 2 + (-w % m), c)
    out = x.new_empty(shape) if workspace is None else workspace.get("tiles", shape, x)
    src = x.permute(0, 2, 3, 1)
    out[:, 1 : h + 1, 1 : w + 1] = src
    out[:, 0, 1 : w + 1] = src[:, 1]  # padded row 0 = row 1; padded row h+1 = row h-2
    out[:, h + 1, 1 : w + 1] = src[:, h - 2]
    out[:, : h + 2, 0] = out[:, : h + 2, 2]  # columns likewise, corners included
    out[:, : h + 2, w + 1] = out[:, : h + 2, w - 1]
    out[:, h + 2 :] = 0  # the zero extension to whole tiles, as in _nhwc_tiles
    out[:, : h + 2, w + 2 :] = 0
    return out


def _input_transform(x: torch.Tensor, r0: int, r1: int, bt2: torch.Tensor, m: int) -> torch.Tensor:
    """Tile rows ``r0:r1`` of NHWC ``x`` -> V = B^T d B as ``(a*a, tiles, Cin)``."""
    a = m + 2
    x = x[:, r0 * m : r1 * m + 2]  # the band's input rows, tiles overlapping by 2
    n, c = x.shape[0], x.shape[3]
    # Overlapping a x a tiles at stride m (a view), gathered into (a*a, tiles*Cin): one copy.
    d = x.unfold(1, a, m).unfold(2, a, m)  # (B, rows, tw, Cin, a, a)
    t = n * d.shape[1] * d.shape[2]
    d = d.permute(4, 5, 0, 1, 2, 3).reshape(a * a, t * c)
    return (bt2 @ d).view(a * a, t, c)


def _conv(
    x: torch.Tensor,
    u: torch.Tensor,
    bias: torch.Tensor | None,
    m: int,
    band_bytes: int,
    shape: tuple[int, int] | None = None,
    into: tuple[Workspace, str] | None = None,
) -> torch.Tensor:
    """``(B, Cin, H+2, W+2)`` (already padded) -> ``(B, Cout, H, W)`` with U ``(a*a, Cin, Cout)``;
    or, given ``shape`` = (H, W), ``x`` already through :func:`_nhwc_tiles`. ``into``: write
    the result into that workspace buffer (eager only).

    Contiguous NCHW like the conv's own output (a cropped view of one if H or W is not a
    multiple of m).
    """
    if shape is None:
        shape, x = (x.shape[2] - 2, x.shape[3] - 2), _nhwc_tiles(x, m)
    a, n, c, co, (h, w) = m + 2, x.shape[0], x.shape[3], u.shape[2], shape
    th, tw = -(-h // m), -(-w // m)  # tile grid, rounded up for H, W not multiples of m
    bt2, _, at2 = _matrices(m, x.dtype, x.device)

    def band(r0: int, r1: int) -> torch.Tensor:  # tile rows r0:r1 -> (B, Cout, rows, m, tw, m)
        v = _input_transform(x, r0, r1, bt2, m)
        mm = torch.bmm(v, u)  # (a*a, tiles, Cout): the a*a GEMMs, the bulk of FLOPs
        y = at2 @ mm.view(a * a, -1)  # output transform A^T M A: (m*m, tiles*Cout)
        # (m, m, B, rows, tw, Cout) -> (B, Cout, rows, m, tw, m). NCHW rather than channels-last
        # because instance norm, next, would convert it back anyway (more slowly than this).
        return y.view(m, m, n, r1 - r0, tw, co).permute(2, 5, 3, 0, 4, 1)

    bands = _bands(th, a * a * n * tw * c * x.element_size(), band_bytes)
    if torch.compiler.is_compiling():
        # Inductor fuses the bias add into the scatter and writes the cat in place; it
        # mis-handles the out= form used in eager below.
        parts = [band(r0, r1) for r0, r1 in bands]
        out = torch.cat([p if bias is None else p + bias.view(co, 1, 1, 1, 1) for p in parts], 2)
    else:
        full = (n, co, th, m, tw, m)
        result = x.new_empty(full) if into is None else into[0].get(into[1], full, x)
        for r0, r1 in bands:  # one pass from the band's result into its rows of NCHW output
            if bias is None:
                result[:, :, r0:r1] = band(r0, r1)
            else:
                torch.add(band(r0, r1), bias.view(co, 1, 1, 1, 1), out=result[:, :, r0:r1])
        out = result
    out = out.reshape(n, co, th * m, tw * m)  # a view, except of a one-band compiled cat
    return out[:, :, :h, :w] if (th * m != h or tw * m != w) else out


def _backward(
    xt: torch.Tensor,
    gy: torch.Tensor,
    u: torch.Tensor,
    m: int,
    band_bytes: int,
    need_x: bool,
    need_w: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Both gradients from the NHWC tiled input ``xt``, dY ``(B, Cout, H, W)`` and U ``(a*a, Cin,
    Cout)``: dL/dx ``(B, Cin, H+2, W+2)`` and dL/dU^T ``(a*a, Cout, Cin)``.

    Y = A^T M A with M = U . V (summed over Cin) per tile, so with Y^ = A dY A^T (computed once
    for both): dL/dU = sum over tiles of Y^ . V, one GEMM (Cout x tiles) @ (tiles x Cin) per
    (row, col) of the tile; dL/dV = Y^ U^T, whose inverse input transform B dL/dV B^T, added up
    where tiles overlap, is dL/dx. Both cost what the forward does, ~1/4 of oneDNN's FLOPs.
    """
    a, n, c = m + 2, xt.shape[0], xt.shape[3]
    co, h, w = gy.shape[1:]
    th, tw = -(-h // m), -(-w // m)
    bt2, _, at2 = _matrices(m, gy.dtype, gy.device)
    gy = F.pad(gy, (0, tw * m - w, 0, th * m - h)).view(n, co, th, m, tw, m)
    du = torch.empty(a * a, co, c, dtype=gy.dtype, device=gy.device) if need_w else None
    gx = torch.zeros(n, th * m + 2, tw * m + 2, c, dtype=gy.dtype, device=gy.device)
    ut = u.transpose(1, 2)  # (a*a, Cout, Cin)
    for i, (r0, r1) in enumerate(_bands(th, a * a * n * tw * c * gy.element_size(), band_bytes)):
        g = gy[:, :, r0:r1].permute(3, 5, 0, 2, 4, 1).reshape(m * m, -1)  # (m*m, tiles*Cout)
        gh = (at2.T @ g).view(a * a, -1, co)  # Y^, (a*a, tiles, Cout)
        if du is not None:
            v = _input_transform(xt, r0, r1, bt2, m)  # recomputed: cheaper than keeping it
            du.baddbmm_(gh.transpose(1, 2), v, beta=float(i > 0))
        if need_x:
            dd = bt2.T @ torch.bmm(gh, ut).view(a * a, -1)  # (a*a, tiles*Cin)
            dd = dd.view(a, a, n, r1 - r0, tw, c)
            band, rows = gx[:, r0 * m : r1 * m + 2], (r1 - r0) * m
            for p in range(a):  # overlap-add: tile (i, j) covers rows i*m + p, cols j*m + q
                for q in range(a):
                    band[:, p : p + rows : m, q : q + tw * m : m] += dd[p, q]
    if not need_x:
        return None, du
    return gx[:, : h + 2, : w + 2].permute(0, 3, 1, 2).contiguous(), du


class WinogradConv3x3(nn.Module):
    """A 3x3, stride-1, unpadded ``nn.Conv2d`` computed with Winograd F(m x m, 3 x 3).

    Built from an existing conv (whose weights it copies and pre-transforms once); the result
    equals ``conv(x)`` up to float rounding. Inference only: the transformed weights are a buffer,
    so there is nothing to train (for training see :func:`winograd_conv3x3`).

    Args:
        conv: ``nn.Conv2d`` with kernel 3, stride 1, padding 0, dilation 1, groups 1.
        m: output tile size, 2 (F(2x2,3x3), 4x4 input tiles) or 4 (F(4x4,3x3), 6x6 input tiles).
            4 is the default: on a 2-core AVX-512 CPU a whole ngf=64 generator took 0.68-0.85x
            the original's time with m=4 (0.87-1.13x with m=2), at ~2e-5 max abs difference
            on the tanh output.
        band_bytes: the image is processed in bands of tile rows whose transformed input is at
            most about this big (at least one tile row), to keep the transforms in cache.
        reflect: take the input unpadded and reflection-pad it by 1 while tiling it (the
            residual block's ``ReflectionPad2d(1)`` then conv, without the padded copy).

    Buffers:
        weight_t: ``(a*a, Cin, Cout)`` = G g G^T per (row, col) of the a x a tile, a = m + 2.
        at2: ``(m*m, a*a)`` = kron(A^T, A^T), the output transform as one matrix.
        bt2: ``(a*a, a*a)`` = kron(B^T, B^T), the input transform as one matrix.
        bias: ``(Cout,)`` (zeros if the conv had none).
    """

    def __init__(
        self, conv: nn.Conv2d, m: int = 4, band_bytes: int = 8 << 20, reflect: bool = False
    ):
        super().__init__()
        _check(conv, m)
        self.m, self.a, self.band_bytes, self.reflect = m, m + 2, band_bytes, reflect
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        dtype, device = conv.weight.dtype, conv.weight.device
        bt2, kg, at2 = _matrices(m, torch.float64, torch.device("cpu"))
        # U computed in float64 so that the only fp32 rounding is the final cast.
        u = _kernel_transform(conv.weight.detach().cpu().to(torch.float64), kg)
        self.register_buffer("weight_t", u.to(dtype=dtype, device=device))
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.register_buffer("bias", bias.to(dtype=dtype, device=device).clone())
        self.register_buffer("bt2", bt2.to(dtype=dtype, device=device))
        self.register_buffer("at2", at2.to(dtype=dtype, device=device))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, m={self.m}, reflect={self.reflect}"

    def forward(
        self, x: torch.Tensor, workspace: Workspace | None = None, out: str = "out"
    ) -> torch.Tensor:
        """``(B, Cin, H+2, W+2)`` (already padded) -> ``(B, Cout, H, W)``, any H, W >= 1; with
        ``reflect``, ``(B, Cin, H, W)`` reflection-padded by 1 on the way in (H, W >= 2).

        With a ``workspace`` (``reflect`` only, eager only), the tiles go into its ``"tiles"``
        buffer and the result into its buffer ``out``; ``x`` may live in ``out`` (it is all
        tiled before the result is written), not in ``"tiles"``."""
        if self.reflect:
            tiles = _reflected_nhwc_tiles(x, self.m, workspace)
            shape = (x.shape[2], x.shape[3])
            into = None if workspace is None else (workspace, out)
            return _conv(tiles, self.weight_t, self.bias, self.m, self.band_bytes, shape, into)
        return _conv(x, self.weight_t, self.bias, self.m, self.band_bytes)


def _check(conv: nn.Module, m: int) -> None:
    if not (
        isinstance(conv, nn.Conv2d)
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.dilation == (1, 1)
        and conv.groups == 1
    ):
        raise ValueError(f"Winograd needs a 3x3/stride 1/padding 0 conv, got {conv}")
    if m not in _MATRICES:
        raise ValueError(f"tile size m must be one of {sorted(_MATRICES)}, got {m}")


_U_CACHE: WeakIdKeyDictionary | None = None  # weight -> {(_version, a*a): U}


@contextlib.contextmanager
def kernel_cache() -> Iterator[None]:
    """Within this block, reuse each weight's transformed kernels until the weight changes in place
    (which bumps its ``_version``). A CycleGAN step runs each generator three times forward and
    three times backward before the optimiser steps, so this saves 5 of 6 kernel transforms per
    conv and step. Scoped rather than global because writes through ``.data`` (gradcheck does
    them) bypass ``_version``; the cached kernels are freed when the block ends."""
    global _U_CACHE
    previous, _U_CACHE = _U_CACHE, WeakIdKeyDictionary()
    try:
        yield
    finally:
        _U_CACHE = previous


def _cached_kernel(weight: torch.Tensor, kg: torch.Tensor) -> torch.Tensor:
    if _U_CACHE is None:
        return _kernel_transform(weight.detach(), kg)
    entry = _U_CACHE.setdefault(weight, {})
    key = (weight._version, kg.shape[0])
    if key not in entry:
        entry.clear()  # an older version (or tile size) is done with
        entry[key] = _kernel_transform(weight.detach(), kg)
    return entry[key]


class _WinogradConv(torch.autograd.Function):
    """A trainable Winograd conv: U is recomputed from the weight at every call (it trains), and
    both gradients stay in the Winograd domain, where the FLOPs are ~1/4 of the direct conv's."""

    @staticmethod
    def forward(ctx, x, weight, bias, m, band_bytes):  # type: ignore[override]
        _, kg, _ = _matrices(m, x.dtype, x.device)
        ctx.m, ctx.band_bytes = m, band_bytes
        # keep the NHWC tiled input (the weight gradient's operand) rather than x: same size,
        # one conversion fewer in backward
        xt = _nhwc_tiles(x, m)
        ctx.save_for_backward(xt, weight)  # (also checks that weight is not modified meanwhile)
        ctx.weight = weight  # the very object, the cache's key
        shape = (x.shape[2] - 2, x.shape[3] - 2)
        return _conv(xt, _cached_kernel(weight, kg), bias, m, band_bytes, shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):  # type: ignore[override]
        xt, _ = ctx.saved_tensors
        weight = ctx.weight
        m, band_bytes = ctx.m, ctx.band_bytes
        _, kg, _ = _matrices(m, gy.dtype, gy.device)
        need_x, need_w = ctx.needs_input_grad[:2]
        u = _cached_kernel(weight, kg)
        gx, du = _backward(xt, gy, u, m, band_bytes, need_x, need_w)
        gw = None
        if du is not None:  # U = kg @ vec(g), so dL/dg = kg^T @ dL/dU
            gw = (kg.T @ du.view(du.shape[0], -1)).T.reshape(weight.shape)
        gb = None
        if ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gw, gb, None, None


def winograd_conv3x3(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    m: int = 4,
    band_bytes: int = 8 << 20,
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` for a 3x3 kernel (stride 1, no padding), forward and
    backward by Winograd F(m x m, 3 x 3): differentiable in ``x``, ``weight`` and ``bias``
    (once; not twice). For CPU training in fp32, where oneDNN's direct conv is the bottleneck."""
    if m not in _MATRICES:
        raise ValueError(f"tile size m must be one of {sorted(_MATRICES)}, got {m}")
    return _WinogradConv.apply(x, weight, bias, m, band_bytes)
