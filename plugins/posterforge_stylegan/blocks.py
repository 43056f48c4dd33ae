"""The StyleGAN building blocks, in the manner of rosinality's stylegan2 (plain PyTorch, nothing
compiled): the equalized layers, the modulated convolution and its companions (noise, the styled
convolution, ToRGB), and the pyramid of sizes and channels both networks walk.

Sizes are given as ``(W, H)``, tensors are ``(B, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NOISE_MODES = ("random", "const", "none")


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with StyleGAN's gain sqrt(2), which keeps unit-variance activations unit-scale."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


def pixel_norm(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Normalise to unit second moment along ``dim`` (a zero vector stays zero)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=dim, keepdim=True) + 1e-8)


def pyramid(image_size: tuple[int, int], min_side: int = 2) -> tuple[tuple[int, int], int]:
    """``((w0, h0), n_up)``: the smallest size, keeping the aspect ratio and a short side of at
    least ``min_side``, from which ``n_up`` doublings reach ``image_size`` ``(W, H)``."""
    w, h = (int(s) for s in image_size)
    n_up = 0
    while w % 2 == 0 and h % 2 == 0 and min(w, h) // 2 >= min_side:
        w, h, n_up = w // 2, h // 2, n_up + 1
    if n_up == 0:
        raise ValueError(
            f"image size {tuple(image_size)} (W, H) cannot be halved down to a short side of "
            f"{min_side}: use sizes like 64x128 or 128x256"
        )
    return (w, h), n_up


def level_channels(
    base: tuple[int, int], n_up: int, channel_base: int, channel_max: int
) -> list[int]:
    """Channels at each resolution level ``0..n_up``: ``channel_base / long side``, capped."""
    long0 = max(base)
    return [max(1, min(channel_base // (long0 << i), channel_max)) for i in range(n_up + 1)]


# --- equalized learning rate --------------------------------------------------------------------


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights drawn from N(0, 1/lr_mul) and scaled at
    run time by ``lr_mul / sqrt(in_dim)``, so Adam updates every layer at the same pace.
    ``lr_mul < 1`` slows a layer down (the mapping network uses 0.01).

    ``(B, in_dim) -> (B, out_dim)``
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        out = F.linear(x, self.weight * self.scale, bias)
        return lrelu(out) if self.activation else out


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate (weights scaled by ``1/sqrt(fan_in)``).

    ``(B, in_ch, H, W) -> (B, out_ch, H', W')``
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, padding: int = 0, bias: bool = True
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


# --- generator building blocks ------------------------------------------------------------------


class ModulatedConv2d(nn.Module):
    """StyleGAN2's convolution: the style scales the weight per input channel (modulation), each
    output channel is renormalised to unit L2 norm (demodulation, which replaces AdaIN: a
    unit-variance input gives a unit-variance output whatever the style), and the batch runs as
    one grouped convolution.

    ``forward(x, w)``: ``(B, in_ch, H, W)`` and ``(B, w_dim)`` to ``(B, out_ch, H, W)``, or
    ``(B, out_ch, 2H, 2W)`` with ``upsample`` (bilinear, then the convolution).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.modulation = EqualLinear(w_dim, in_ch, bias_init=1.0)  # styles start at 1
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, _, h, wd = x.shape
        style = self.modulation(w).view(b, 1, self.in_ch, 1, 1)
        weight = self.scale * self.weight * style  # (B, out, in, k, k)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4)) + 1e-8)
            weight = weight * demod.view(b, self.out_ch, 1, 1, 1)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            h, wd = 2 * h, 2 * wd
        # The batch becomes the groups: one convolution with a different weight per sample.
        weight = weight.view(b * self.out_ch, self.in_ch, self.kernel_size, self.kernel_size)
        out = F.conv2d(
            x.reshape(1, b * self.in_ch, h, wd),
            weight.to(x.dtype),
            padding=self.kernel_size // 2,
            groups=b,
        )
        return out.view(b, self.out_ch, h, wd)


class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned strength (starting at 0). ``noise_mode``: ``"random"``
    draws fresh noise from the global RNG, ``"const"`` uses the fixed buffer ``noise_const``
    (saved with the weights, so sampling can be deterministic), ``"none"`` adds nothing.

    ``(B, C, H, W) -> (B, C, H, W)`` with ``size == (W, H)``
    """

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, size[1], size[0]))

    def forward(self, x: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        elif noise_mode == "random":
            b, _, h, w = x.shape
            noise = torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)
        else:
            raise ValueError(f"noise_mode {noise_mode!r}: expected one of {NOISE_MODES}")
        return x + self.strength * noise


class StyledConv(nn.Module):
    """Modulated convolution, noise, bias, leaky ReLU: one layer of the synthesis network.

    ``forward(x, w, noise_mode)``: ``(B, in_ch, H, W)`` to ``(B, out_ch, H', W')``, where
    ``size == (W', H')`` is the output size.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        w_dim: int,
        size: tuple[int, int],
        upsample: bool = False,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection(size)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.noise(self.conv(x, w), noise_mode)
        return lrelu(x + self.bias)


class ToRGB(nn.Module):
    """1x1 modulated convolution to RGB (no demodulation: colours need their scale), added to the
    upsampled RGB of the previous resolution (the skip architecture of StyleGAN2).

    ``forward(x, w, skip)``: ``(B, in_ch, H, W)``, ``(B, w_dim)`` and ``(B, 3, H/2, W/2)`` or
    ``None`` to ``(B, 3, H, W)``.
    """

    def __init__(self, in_ch: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return out
