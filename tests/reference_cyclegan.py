"""The module layouts of the foreign checkpoints we import, restated for the parity tests.

- ``ReferenceResnetGenerator``: the layout of ``ResnetGenerator`` in junyanz/pytorch-CycleGAN-and-
  pix2pix (models/networks.py, BSD licence), with ``norm='instance'`` (non-affine) and optional
  dropout; its state-dict keys look like ``model.10.conv_block.1.weight``.
- vintagify's generator is imported from the installed vintagify package itself.
"""

from __future__ import annotations

from torch import nn


class ReferenceResnetBlock(nn.Module):
    def __init__(self, dim: int, use_dropout: bool):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=True),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ReferenceResnetGenerator(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 9, use_dropout: bool = False):
        super().__init__()
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, 7, bias=True),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(ngf * mult * 2),
                nn.ReLU(True),
            ]
        model += [ReferenceResnetBlock(ngf * 4, use_dropout) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=True
                ),
                nn.InstanceNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)
