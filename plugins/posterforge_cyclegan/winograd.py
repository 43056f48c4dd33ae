"""Winograd fast convolution for the residual-block 3x3 convs of the ResNet generator (inference).

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

import copy

import torch
import torch.nn.functional as F
from torch import nn

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


class WinogradConv3x3(nn.Module):
    """A 3x3, stride-1, unpadded ``nn.Conv2d`` computed with Winograd F(m x m, 3 x 3).

    Built from an existing conv (whose weights it copies and pre-transforms once); the result
    equals ``conv(x)`` up to float rounding. Inference only: the transformed weights are a buffer,
    so there is nothing to train.

    Args:
        conv: ``nn.Conv2d`` with kernel 3, stride 1, padding 0, dilation 1, groups 1.
        m: output tile size, 2 (F(2x2,3x3), 4x4 input tiles) or 4 (F(4x4,3x3), 6x6 input tiles).
            4 is the default: on a 2-core AVX-512 CPU a whole ngf=64 generator took 0.68-0.85x
            the original's time with m=4 (0.87-1.13x with m=2), at ~2e-5 max abs difference
            on the tanh output.
        band_bytes: the image is processed in bands of tile rows whose transformed input is at
            most about this big (at least one tile row), to keep the transforms in cache.

    Buffers:
        weight_t: ``(a*a, Cin, Cout)`` = G g G^T per (row, col) of the a x a tile, a = m + 2.
        at2: ``(m*m, a*a)`` = kron(A^T, A^T), the output transform as one matrix.
        bt2: ``(a*a, a*a)`` = kron(B^T, B^T), the input transform as one matrix.
        bias: ``(Cout,)`` (zeros if the conv had none).
    """

    def __init__(self, conv: nn.Conv2d, m: int = 4, band_bytes: int = 8 << 20):
        super().__init__()
        if not (
            isinstance(conv, nn.Conv2d)
            and conv.kernel_size == (3, 3)
            and conv.stride == (1, 1)
            and conv.padding == (0, 0)
            and conv.dilation == (1, 1)
            and conv.groups == 1
        ):
            raise ValueError(f"WinogradConv3x3 needs a 3x3/stride 1/padding 0 conv, got {conv}")
        if m not in _MATRICES:
            raise ValueError(f"tile size m must be one of {sorted(_MATRICES)}, got {m}")
        self.m, self.a, self.band_bytes = m, m + 2, band_bytes
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        bt, g, at = (torch.tensor(x, dtype=torch.float64) for x in _MATRICES[m])
        dtype, device = conv.weight.dtype, conv.weight.device

        # U = G g G^T for every (cout, cin), computed in float64 so the only fp32 rounding is the
        # final cast. Stored (a*a, Cin, Cout): the k-th GEMM's right operand, contiguous.
        w = conv.weight.detach().to(torch.float64)  # (Cout, Cin, 3, 3)
        u = torch.einsum("ik,ockl,jl->ijco", g, w, g)  # (a, a, Cin, Cout)
        u = u.reshape(self.a * self.a, self.in_channels, self.out_channels)
        self.register_buffer("weight_t", u.to(dtype).contiguous().to(device))
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.register_buffer("bias", bias.to(dtype=dtype, device=device).clone())
        # Two-sided transforms as single matrices acting on a flattened (row, col) tile index:
        # (B^T d B) flattened row-major = kron(B^T, B^T) @ vec(d); same for A^T m A.
        self.register_buffer("bt2", torch.kron(bt, bt).to(dtype=dtype, device=device))
        self.register_buffer("at2", torch.kron(at, at).to(dtype=dtype, device=device))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, m={self.m}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, Cin, H+2, W+2)`` (already padded) -> ``(B, Cout, H, W)``, any H, W >= 1.

        Contiguous NCHW like the conv's own output (a cropped view of one if H or W is not a
        multiple of m).
        """
        m, a = self.m, self.a
        n, c, hp, wp = x.shape
        h, w = hp - 2, wp - 2
        th, tw = -(-h // m), -(-w // m)  # tile grid, rounded up for H, W not multiples of m
        # Zero-extend bottom/right so the grid covers the input exactly; the surplus outputs
        # are cropped at the end (they only ever see the zeros, never leak into real outputs).
        extra_h, extra_w = th * m - h, tw * m - w
        if extra_h or extra_w:
            x = F.pad(x, (0, extra_w, 0, extra_h))
        # NHWC, so that channels are innermost from here on (a no-op if x already is).
        x = x.permute(0, 2, 3, 1).contiguous()  # (B, Hp', Wp', Cin)

        # Bands of tile rows, sized so that one band's transformed tiles (a*a * tiles * Cin floats)
        # stay cache-sized: at 1280x720 the whole-image buffers are hundreds of MB each, and
        # streaming them through memory (and page-faulting them in) costs more than Winograd saves.
        rows = max(1, self.band_bytes // (a * a * n * tw * c * x.element_size()))
        bands = [(r0, min(r0 + rows, th)) for r0 in range(0, th, rows)]
        co, bias = self.out_channels, self.bias.view(self.out_channels, 1, 1, 1, 1)
        if torch.compiler.is_compiling():
            # Inductor fuses the bias add into the scatter and writes the cat in place; it
            # mis-handles the out= form used in eager below.
            out = torch.cat([self._band(x, r0, r1) + bias for r0, r1 in bands], dim=2)
        else:
            out = torch.empty(n, co, th, m, tw, m, dtype=x.dtype, device=x.device)
            for r0, r1 in bands:  # one pass from the band's result into its rows of NCHW output
                torch.add(self._band(x, r0, r1), bias, out=out[:, :, r0:r1])
        out = out.view(n, co, th * m, tw * m)
        return out[:, :, :h, :w] if (extra_h or extra_w) else out

    def _band(self, x: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
        """Tile rows ``r0:r1`` of NHWC ``x`` (B, Hp', Wp', Cin) -> their outputs as a permuted
        view ``(B, Cout, r1-r0, m, tw, m)`` (NCHW once flattened; the caller copies it out)."""
        m, a = self.m, self.a
        x = x[:, r0 * m : r1 * m + 2]  # the band's input rows, tiles overlapping by 2
        n, c = x.shape[0], x.shape[3]
        # Overlapping a x a tiles at stride m (a view), gathered into (a*a, tiles*Cin): one copy.
        d = x.unfold(1, a, m).unfold(2, a, m)  # (B, rows, tw, Cin, a, a)
        rows, tw = d.shape[1], d.shape[2]
        t = n * rows * tw
        d = d.permute(4, 5, 0, 1, 2, 3).reshape(a * a, t * c)
        v = (self.bt2 @ d).view(a * a, t, c)  # input transform B^T d B

        mm = torch.bmm(v, self.weight_t)  # (a*a, tiles, Cout): the a*a GEMMs, the bulk of FLOPs

        co = self.out_channels
        y = self.at2 @ mm.view(a * a, t * co)  # output transform A^T M A: (m*m, tiles*Cout)
        # (m, m, B, rows, tw, Cout) -> (B, Cout, rows, m, tw, m). NCHW rather than channels-last
        # because instance norm, next, would convert it back anyway (more slowly than this).
        return y.view(m, m, n, rows, tw, co).permute(2, 5, 3, 0, 4, 1)


def winogradize(net: nn.Module, m: int = 4) -> nn.Module:
    """A deep copy of ``net`` (a ``ResnetGenerator``) with every ``ResidualBlock``'s ``conv1`` and
    ``conv2`` replaced by :class:`WinogradConv3x3`; ``net`` itself is left untouched.

    Only the residual blocks are converted: they carry ~88% of the FLOPs and are exactly the
    3x3/stride-1/reflection-padded case; the stem, strided and transposed convs stay as they are.
    """
    from posterforge_cyclegan.network import ResidualBlock

    net = copy.deepcopy(net)
    for block in net.modules():
        if isinstance(block, ResidualBlock):
            block.conv1 = WinogradConv3x3(block.conv1, m)
            block.conv2 = WinogradConv3x3(block.conv2, m)
    return net
