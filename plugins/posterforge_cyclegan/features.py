"""``vintagify-encoder-v1``: the feature extractor ``posterforge eval`` measures with by default.

The encoder half of the CycleGAN ResNet generator that the vintagify package trained, pooled to
per-channel statistics; registered through ``register_feature_extractors`` under its name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posterforge.plugin import FeatureExtractor, PosterforgeError, WeightsError
from posterforge_cyclegan.vintagify import ENCODER_NAME, VINTAGIFY_SHA256, locate_vintagify

DEFAULT_SIZE = 128
VINTAGIFY_DESCRIPTION = (
    "vintagify-encoder-v1: the encoder half (7x7 stem, two stride-2 convolutions and nine "
    "residual blocks, 256 channels at a quarter of the resolution) of the CycleGAN ResNet "
    "generator that the vintagify package (MIT, Yusong Zhao and Fangyi Wang) trained for unpaired "
    "modern-photo -> vintage-photo translation (G_A2B_epoch33.pth: LSGAN adversarial, L1 cycle and "
    "identity losses, 512x512 images). Images are resized to 128x128; each of the 256 bottleneck "
    "channels is pooled to its spatial mean and standard deviation, and so is each of the 64 "
    "channels of the first convolution before its instance normalisation (which would otherwise "
    "hide an image's overall brightness, contrast and colour cast from every later layer): a "
    "640-d vector. It was never trained to recognise objects, unlike the Inception network of "
    "standard FID: its features describe colour, texture and local layout as a photo-to-photo "
    "translator sees them. Its numbers rank generators against each other on the same real set; "
    "they are NOT comparable with published FID or KID values."
)


class _ResnetBlock(nn.Module):
    """vintagify's residual block, under its own key names (``block.1``, ``block.5``, ...)."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim, affine=True),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class VintagifyEncoder(FeatureExtractor):
    """The encoder of vintagify's CycleGAN generator, pooled to mean and std per channel.

    ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 2 * (4 * ngf + ngf))`` (640 for vintagify's ngf=64):
    the bottleneck's channels, then the first convolution's channels before their instance norm.
    The layers sit at the same ``model.<i>`` indices as in vintagify's ``nn.Sequential``, so its
    state dict loads as is; the decoder keys are simply not used.
    """

    name = ENCODER_NAME
    description = VINTAGIFY_DESCRIPTION

    def __init__(self, ngf: int = 64, n_blocks: int = 9, size: int = DEFAULT_SIZE):
        super().__init__()
        c = ngf * 4
        self.size, self.num_features = size, 2 * (c + ngf)
        if size != DEFAULT_SIZE:  # other numbers: a name of their own
            self.name = f"{type(self).name}@{size}"
            self.description = self.description.replace(
                f"resized to {DEFAULT_SIZE}x{DEFAULT_SIZE}", f"resized to {size}x{size}"
            )
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, 7),
            nn.InstanceNorm2d(ngf, affine=True),
            nn.ReLU(),
        ]
        for cin in (ngf, ngf * 2):  # the two stride-2 down-sampling convolutions
            layers += [
                nn.Conv2d(cin, cin * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(cin * 2, affine=True),
                nn.ReLU(),
            ]
        layers += [_ResnetBlock(c) for _ in range(n_blocks)]
        self.model = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_vintagify(
        cls, path: str | Path | None = None, size: int = DEFAULT_SIZE
    ) -> VintagifyEncoder:
        """Load the installed vintagify checkpoint (or ``path``, a file with the same layout
        and contents)."""
        if path is None:
            path = locate_vintagify()
            if path is None:
                raise PosterforgeError(
                    "the default evaluation features need the vintagify package, which is not "
                    "installed: pip install vintagify (or pass a local Inception weights file)"
                )
        path = Path(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != VINTAGIFY_SHA256:
            raise WeightsError(
                f"{path} is not the checkpoint {cls.name} is defined by (sha256 {digest[:12]}..., "
                f"expected {VINTAGIFY_SHA256[:12]}...): install vintagify 0.1.2"
            )
        return cls.from_state_dict(torch.load(path, map_location="cpu", weights_only=True), size)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], size: int = DEFAULT_SIZE) -> VintagifyEncoder:
        """Build from a vintagify generator state dict; ngf and the block count come from it."""
        blocks = {int(k.split(".")[1]) for k in state if ".block." in k}
        net = cls(ngf=state["model.1.weight"].shape[0], n_blocks=len(blocks), size=size)
        ours = net.state_dict()
        net.load_state_dict({k: v for k, v in state.items() if k in ours}, strict=True)
        return net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        stem = self.model[:2](self.resize(images) * 2 - 1)  # trained on [-1, 1]
        x = self.model[2:](stem)
        return torch.cat([_mean_std(x), _mean_std(stem)], dim=1)


def _mean_std(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, 2C)``: each channel's mean, then each one's std, over space."""
    return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3), correction=0)], dim=1)


def vintagify_encoder() -> VintagifyEncoder:
    """The registered extractor: :class:`VintagifyEncoder` from the installed checkpoint."""
    return VintagifyEncoder.from_vintagify()
