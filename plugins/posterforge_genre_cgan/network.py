"""The conditional DCGAN of the reference work, at 64 wide x 128 high.

Generator: ``z`` (100) concatenated with the genre vector (20, one-hot or multi-hot) is the
120-channel 1x1 input; a transposed convolution makes a 4x2 map, five more double it up to
128x64; batch norm and ReLU between, tanh at the end.

Discriminator: strided convolutions down to a 4x2 feature map, flattened to ``h``; the output is
``linear(h) + <embed(y), h>``: the genre enters through one linear layer on the features (the
projection discriminator of Miyato & Koyama, 2018), which is how the reference work fed it.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from posterforge.plugin import LabelSet
from posterforge_genre_cgan.config import HEIGHT, WIDTH, GenreConfig


class GenreGenerator(nn.Module):
    """``forward(z, y)``: ``(B, z_dim)`` noise and ``(B, n_labels)`` genre weights to
    ``(B, 3, 128, 64)`` in ``[-1, 1]``. A stored one is rebuilt from its header's config and
    labels: ``GenreGenerator(GenreConfig.from_dict(header["config"]), len(header["labels"]))``."""

    def __init__(self, config: GenreConfig, n_labels: int = 20):
        super().__init__()
        self.config = config
        z_dim, ngf = config.z_dim, config.ngf
        self.z_dim, self.n_labels, self.ngf = z_dim, n_labels, ngf
        chans = [ngf * 8, ngf * 4, ngf * 2, ngf, ngf]

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(True),
            ]

        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + n_labels, chans[0], (4, 2), 1, 0, bias=False),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(True),
        ]
        for cin, cout in itertools.pairwise(chans):
            layers += up(cin, cout)  # 4x2 -> 8x4 -> 16x8 -> 32x16 -> 64x32
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1), nn.Tanh()]  # -> 128x64
        self.net = nn.Sequential(*layers)
        init_dcgan(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, y.to(z.dtype)], dim=1)
        return self.net(x[:, :, None, None])


class GenreDiscriminator(nn.Module):
    """``forward(x, y)``: ``(B, 3, 128, 64)`` in ``[-1, 1]`` and ``(B, n_labels)`` genre weights
    to ``(B,)`` logits."""

    def __init__(self, n_labels: int = 20, ndf: int = 64):
        super().__init__()
        self.n_labels, self.ndf = n_labels, ndf
        chans = [ndf, ndf * 2, ndf * 4, ndf * 8, ndf * 8]
        layers: list[nn.Module] = [nn.Conv2d(3, chans[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for cin, cout in itertools.pairwise(chans):  # 64x32 -> ... -> 4x2
            layers += [
                nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.2, True),
            ]
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_features = chans[-1] * (HEIGHT // 32) * (WIDTH // 32)
        self.out = nn.Linear(n_features, 1)
        self.embed = nn.Linear(n_labels, n_features, bias=False)  # the genre's one linear layer
        init_dcgan(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.out(h).squeeze(1) + (self.embed(y.to(h.dtype)) * h).sum(dim=1)


def init_dcgan(net: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) weights; batch norm scales N(1, 0.02), shifts 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class PosterSampler(nn.Module):
    """The built generator behind ``posterforge generate`` (the plugin contract's
    :class:`posterforge.models.BuiltGenerator`): ``sample(z, labels)`` gives ``(B, 3, 128, 64)``
    in ``[0, 1]``; conditions are genre names, aliases or mixes, parsed by ``labels``.

    Its latent is z itself (the ``LatentGenerator`` capability, ``latent_kind = "z"``):
    ``to_latent`` is the identity, ``latent_start`` zeros (the mode of z's prior) and
    ``render`` is ``sample``."""

    latent_kind = "z"

    def __init__(self, net: GenreGenerator, labels: LabelSet | list[str]):
        super().__init__()
        labels = labels if isinstance(labels, LabelSet) else LabelSet(tuple(labels))
        if len(labels) != net.n_labels:
            raise ValueError(f"{len(labels)} label names for {net.n_labels} labels")
        self.net = net
        self.labels = labels
        self.z_dim = net.z_dim
        self.label_names = list(labels.names)
        self.image_size = (WIDTH, HEIGHT)
        self.latent_dim = int(net.z_dim)

    def conditions(self, spec: str) -> torch.Tensor:
        return torch.tensor(self.labels.vector(spec))

    def caption(self, spec: str) -> str:
        return self.labels.caption(spec)

    def sample(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(z, labels).add(1.0).mul(0.5).clamp(0.0, 1.0)

    def to_latent(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return z

    def latent_start(self, labels: torch.Tensor | None) -> torch.Tensor:
        batch = 1 if labels is None else labels.shape[0]
        device = self.net.net[0].weight.device
        return torch.zeros(batch, self.z_dim, device=device)

    def render(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.sample(latent, labels)

    forward = sample
