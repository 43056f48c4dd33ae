"""The generator: the mapping and synthesis networks together, built from its config (what the
weight header stores), and style mixing's crossover draw."""

from __future__ import annotations

import torch
from torch import nn

from posterforge_stylegan.config import StyleGeneratorConfig
from posterforge_stylegan.mapping import MappingNetwork
from posterforge_stylegan.synthesis import SynthesisNetwork


def style_crossover(
    num_ws: int, mixing_prob: float, generator: torch.Generator | None = None
) -> int:
    """Style mixing regularisation's draw: with probability ``mixing_prob`` a crossover layer in
    ``[1, num_ws)`` (layers from it on take the second latent's w), otherwise ``num_ws`` (no
    mixing). One crossover per batch, as in StyleGAN2. Draws come from ``generator`` (a CPU
    generator) or the global CPU RNG, so a run with restored RNG states repeats them."""
    if num_ws < 2 or mixing_prob <= 0:
        return num_ws
    if torch.rand((), generator=generator).item() >= mixing_prob:
        return num_ws
    return int(torch.randint(1, num_ws, (), generator=generator))


class StyleGenerator(nn.Module):
    """Mapping and synthesis networks together. ``forward(z, c, truncation_psi, noise_mode)``:
    ``(B, z_dim)`` and ``(B, c_dim)`` (None when ``c_dim == 0``) to ``(B, 3, H, W)`` roughly
    in ``[-1, 1]``. ``StyleGenerator(StyleGeneratorConfig.from_dict(header["config"]))`` rebuilds
    a stored one (the header's config is ``g.config.to_dict()``).
    """

    def __init__(self, config: StyleGeneratorConfig):
        super().__init__()
        self.config = c = config
        self.z_dim, self.c_dim, self.w_dim = c.z_dim, c.c_dim, c.w_dim
        self.mapping = MappingNetwork(
            c.z_dim, c.c_dim, c.w_dim, c.embed_dim, c.mapping_layers, c.mapping_lr_mul, c.w_avg_beta
        )
        self.synthesis = SynthesisNetwork(
            c.w_dim, c.image_size, c.channel_base, c.channel_max, c.min_side
        )
        self.num_ws = self.synthesis.num_ws
        self.image_size = self.synthesis.image_size

    def ws(
        self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0
    ) -> torch.Tensor:
        """``(B, num_ws, w_dim)``: the same w for every layer."""
        w = self.mapping(z, c, truncation_psi)
        return w[:, None].expand(-1, self.num_ws, -1)

    def mixed_ws(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        z2: torch.Tensor | None = None,
        mixing_prob: float = 0.9,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Training styles with mixing: ``(B, num_ws, w_dim)``, layers from
        :func:`style_crossover`'s draw on taken from the second latent ``z2`` (default: drawn
        from the global RNG on z's device), which shares the condition and leaves ``w_avg``
        alone (it is not a sample of its own)."""
        ws = self.ws(z, c)
        cutoff = style_crossover(self.num_ws, mixing_prob, generator)
        if cutoff == self.num_ws:
            return ws
        if z2 is None:
            z2 = torch.randn_like(z)
        w2 = self.mapping(z2, c, update_w_avg=False)
        return torch.cat([ws[:, :cutoff], w2[:, None].expand(-1, self.num_ws - cutoff, -1)], 1)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        noise_mode: str = "random",
    ) -> torch.Tensor:
        return self.synthesis(self.ws(z, c, truncation_psi), noise_mode)
