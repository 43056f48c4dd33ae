"""PatchGAN discriminator (Isola et al. 2017): classifies overlapping 70x70 patches.

    conv 4x4 s2 (no norm) -> conv 4x4 s2 + IN -> conv 4x4 s2 + IN -> conv 4x4 s1 + IN -> conv 4x4 s1
    LeakyReLU(0.2) after every conv but the last; the output is one score per patch.

Instance norm (not batch norm) keeps each sample independent, which the WGAN-GP penalty needs.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """``(B, 3, H, W)`` in [-1, 1] -> ``(B, 1, H/8 - 2, W/8 - 2)``: a score per 70x70 patch."""

    def __init__(self, ndf: int = 64, n_layers: int = 3, in_channels: int = 3):
        super().__init__()
        self.config = dict(ndf=ndf, n_layers=n_layers, in_channels=in_channels)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for i in range(1, n_layers + 1):
            prev, mult = mult, min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(ndf * mult, affine=True),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
