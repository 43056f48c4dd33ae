"""The CycleGAN generator's config: what its weight header's ``config`` holds, with the values
each field allows (torch-free, so the importers and ``check`` read it before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass

from posterforge.plugin import NetConfig, between, flag


@dataclass(frozen=True, kw_only=True)
class ResnetConfig(NetConfig):
    """:class:`~posterforge_cyclegan.network.ResnetGenerator`'s shape."""

    ngf: int = between(1, 1024, 64)  # channels after the stem; x2, x4 after the downsamplings
    n_blocks: int = between(0, 64, 9)  # residual blocks (6 for 128x128 in the reference, 9)
    affine: bool = flag(False)  # learned instance-norm scales (vintagify has them)
    in_channels: int = between(3, 3, 3)
    out_channels: int = between(3, 3, 3)
