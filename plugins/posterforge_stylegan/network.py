"""A StyleGAN2-style conditional generator and a projection discriminator for posters.

Plain PyTorch, in the manner of rosinality's stylegan2: nothing compiled, no custom CUDA ops.
Reading order, one module each: :mod:`~posterforge_stylegan.blocks` (equalized layers, the
modulated convolution and its companions: noise, ToRGB), :mod:`~posterforge_stylegan.mapping`
(z and the condition c to w, with a per-label average of w for truncation),
:mod:`~posterforge_stylegan.synthesis` (w to a poster), :mod:`~posterforge_stylegan.generator`
(both together, built from :class:`~posterforge_stylegan.config.StyleGeneratorConfig`), then
:mod:`~posterforge_stylegan.discriminator`. This module gathers their names.

Posters are not square: the synthesis starts from a learned constant with the poster's aspect
ratio (2 wide x 4 high for 64x128) and doubles it up to the image size; the discriminator walks
the same resolutions down. Sizes are given as ``(W, H)``, tensors are ``(B, C, H, W)``.
"""

from posterforge_stylegan.blocks import (
    NOISE_MODES,
    EqualConv2d,
    EqualLinear,
    ModulatedConv2d,
    NoiseInjection,
    StyledConv,
    ToRGB,
    level_channels,
    lrelu,
    pixel_norm,
    pyramid,
)
from posterforge_stylegan.config import StyleDiscriminatorConfig, StyleGeneratorConfig
from posterforge_stylegan.discriminator import ResBlock, StyleDiscriminator, minibatch_stddev
from posterforge_stylegan.generator import StyleGenerator, style_crossover
from posterforge_stylegan.mapping import MappingNetwork
from posterforge_stylegan.synthesis import SynthesisNetwork

__all__ = [
    "NOISE_MODES",
    "EqualConv2d",
    "EqualLinear",
    "MappingNetwork",
    "ModulatedConv2d",
    "NoiseInjection",
    "ResBlock",
    "StyleDiscriminator",
    "StyleDiscriminatorConfig",
    "StyleGenerator",
    "StyleGeneratorConfig",
    "StyledConv",
    "SynthesisNetwork",
    "ToRGB",
    "level_channels",
    "lrelu",
    "minibatch_stddev",
    "pixel_norm",
    "pyramid",
    "style_crossover",
]
