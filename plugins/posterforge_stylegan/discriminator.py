"""The residual projection discriminator: from RGB down the generator's pyramid, minibatch
standard deviation, and the condition projected on the features."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from posterforge_stylegan.blocks import EqualConv2d, EqualLinear, level_channels, lrelu, pyramid
from posterforge_stylegan.config import StyleDiscriminatorConfig


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a 2x average-pool between, plus a pooled 1x1 skip, summed and
    scaled by 1/sqrt(2). ``(B, in_ch, H, W) -> (B, out_ch, H/2, W/2)``"""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, in_ch, 3, padding=1)
        self.conv2 = EqualConv2d(in_ch, out_ch, 3, padding=1)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(lrelu(self.conv1(x)), 2)
        out = lrelu(self.conv2(out))
        return (out + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, n_channels: int = 1) -> torch.Tensor:
    """Append ``n_channels`` maps holding the standard deviation of the features across groups of
    samples, so D can see a lack of variety (mode collapse). The group is the largest divisor of
    the batch up to ``group_size``. ``(B, C, H, W) -> (B, C + n_channels, H, W)``"""
    b, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, b) + 1) if b % d == 0)
    y = x.reshape(g, -1, n_channels, c // n_channels, h, w)
    y = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt()  # (B/g, n, C/n, H, W)
    y = y.mean(dim=(2, 3, 4)).reshape(-1, n_channels, 1, 1)  # (B/g, n, 1, 1)
    return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


class StyleDiscriminator(nn.Module):
    """Residual discriminator with minibatch standard deviation and a projection condition.

    From RGB at the image size, residual blocks halve the resolution down to the synthesis
    network's smallest size (2x4 for 64x128); then minibatch stddev, a 3x3 convolution and a
    linear layer give the features ``h``. The output is ``linear(h) + <embed(c), h>`` (Miyato &
    Koyama's projection: affine in c); ``c_dim == 0`` is unconditional.

    ``forward(images, c)``: ``(B, 3, H, W)`` in ``[-1, 1]`` and ``(B, c_dim)`` to ``(B,)`` logits.
    The config's ``image_size`` and channels are those of the generator it judges.
    """

    def __init__(self, config: StyleDiscriminatorConfig | None = None):
        super().__init__()
        self.config = c = StyleDiscriminatorConfig() if config is None else config
        self.c_dim, self.image_size = c.c_dim, c.image_size
        self.mbstd_group, self.mbstd_channels = c.mbstd_group, c.mbstd_channels
        (w0, h0), n_up = pyramid(self.image_size, c.min_side)
        chans = level_channels((w0, h0), n_up, c.channel_base, c.channel_max)
        self.from_rgb = EqualConv2d(3, chans[n_up], 1)
        self.blocks = nn.Sequential(*(ResBlock(chans[i], chans[i - 1]) for i in range(n_up, 0, -1)))
        ch = chans[0]
        if ch % c.mbstd_channels:
            raise ValueError(f"mbstd_channels {c.mbstd_channels} must divide {ch} channels")
        self.final_conv = EqualConv2d(ch + c.mbstd_channels, ch, 3, padding=1)
        self.final_linear = EqualLinear(ch * h0 * w0, ch, activation=True)
        self.out = EqualLinear(ch, 1)
        self.embed = EqualLinear(c.c_dim, ch, bias=False) if c.c_dim > 0 else None
        self.proj_scale = 1.0 / math.sqrt(ch)  # keeps <embed(c), h> on the scale of linear(h)

    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(lrelu(self.from_rgb(images)))
        x = minibatch_stddev(x, self.mbstd_group, self.mbstd_channels)
        h = self.final_linear(lrelu(self.final_conv(x)).flatten(1))  # (B, ch)
        logits = self.out(h).squeeze(1)
        if self.embed is None:
            return logits
        if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"condition of shape {got}: expected (B, {self.c_dim})")
        return logits + (self.embed(c.to(h.dtype)) * h).sum(dim=1) * self.proj_scale
