"""The StyleGAN family's configs, each field with the values it allows: the generator's (what
its weight header's ``config`` holds), the discriminator's and the adaptive augmentation's.
Torch-free, so ``check`` reads a header before torch loads."""

from __future__ import annotations

from dataclasses import dataclass

from posterforge.plugin import NetConfig, between, size_between


@dataclass(frozen=True, kw_only=True)
class StyleGeneratorConfig(NetConfig):
    """:class:`~posterforge_stylegan.generator.StyleGenerator`'s shape. ``c_dim`` is the number
    of labels (0: unconditional), which the header's label names must match."""

    z_dim: int = between(1, 4096)
    c_dim: int = between(0, 10_000)
    w_dim: int = between(1, 4096)
    image_size: tuple[int, int] = size_between(4, 4096, (64, 128))  # (W, H): not square
    embed_dim: int | None = between(1, 4096, None)  # the label embedding; None: w_dim
    mapping_layers: int = between(1, 32, 4)
    mapping_lr_mul: float = between(0.0, 10.0, 0.01)  # the mapping net learns 100x slower
    w_avg_beta: float = between(0.0, 1.0, 0.995)  # EMA of the per-label w averages
    channel_base: int = between(1, 1 << 20, 4096)  # channels at a level: base / its long side
    channel_max: int = between(1, 2048, 128)
    min_side: int = between(1, 64, 2)  # the learned constant's short side

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embed_dim is None:
            object.__setattr__(self, "embed_dim", self.w_dim)  # stored resolved, as ever


@dataclass(frozen=True, kw_only=True)
class StyleDiscriminatorConfig(NetConfig):
    """:class:`~posterforge_stylegan.discriminator.StyleDiscriminator`'s shape."""

    c_dim: int = between(0, 10_000, 0)
    image_size: tuple[int, int] = size_between(4, 4096, (64, 128))
    channel_base: int = between(1, 1 << 20, 4096)
    channel_max: int = between(1, 2048, 128)
    mbstd_group: int = between(1, 1024, 4)  # samples per minibatch-stddev group
    mbstd_channels: int = between(1, 2048, 1)
    min_side: int = between(1, 64, 2)


@dataclass(frozen=True, kw_only=True)
class AugmentConfig(NetConfig):
    """:class:`~posterforge_stylegan.augment.AdaptiveAugment`'s schedule and op strengths."""

    p: float = between(0.0, 1.0, 0.0)  # the initial probability of each op
    target: float | None = between(0.0, 1.0, 0.6, or_none=True)  # r_t to aim at; None: fixed p
    interval: int = between(1, 1 << 20, 4)  # adjust() calls between moves of p
    speed_kimg: float = between(1e-6, 1e9, 500.0)  # thousands of images for p to move by 1
    translate: float = between(0.0, 1.0, 0.125)  # of the image size
    scale_std: float = between(0.0, 10.0, 0.2)  # log2 of the scale
    rotate_max: float = between(0.0, 180.0, 10.0)  # degrees
    brightness_std: float = between(0.0, 10.0, 0.2)
    contrast_std: float = between(0.0, 10.0, 0.5)  # log2
    saturation_std: float = between(0.0, 10.0, 1.0)  # log2
