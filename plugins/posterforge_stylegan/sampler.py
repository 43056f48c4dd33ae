"""The built StyleGAN poster generator (the plugin contract's ``BuiltGenerator``, with the
optional ``LatentGenerator`` and ``StyleMixer`` capabilities: W space, per-layer styles)."""

from __future__ import annotations

import torch
from torch import nn

from posterforge.plugin import LabelSet
from posterforge_stylegan.generator import StyleGenerator


class StyleSampler(nn.Module):
    """``sample(z, labels, truncation)`` gives ``(B, 3, H, W)`` in ``[0, 1]``. Truncation is the
    model's own (``truncation = "model"``): w moves toward the average w of the requested labels
    (a mix: their weighted average), not a global one. Noise is the stored constant, so the same
    (seed, index) gives the same poster.

    Latents are W (``latent_kind = "w"``, one ``w`` per sample, ``latent_dim = w_dim``):
    ``to_latent`` is the mapping, ``latent_start`` the label's ``w_avg`` and ``render`` the
    synthesis from ``w`` broadcast to every layer; ``render_styles`` takes one ``w`` per layer
    (``style_layers`` of them), for style mixing."""

    truncation = "model"
    latent_kind = "w"

    def __init__(self, net: StyleGenerator, labels: LabelSet):
        super().__init__()
        if len(labels) != net.c_dim:
            raise ValueError(f"{len(labels)} label names for {net.c_dim} labels")
        self.net, self.labels = net, labels
        self.z_dim = net.z_dim
        self.label_names = list(labels.names)
        w, h = net.image_size
        self.image_size = (int(w), int(h))
        self.latent_dim = int(net.w_dim)
        self.style_layers = int(net.num_ws)

    def conditions(self, spec: str) -> torch.Tensor:
        return torch.tensor(self.labels.vector(spec))

    def caption(self, spec: str) -> str:
        return self.labels.caption(spec)

    def sample(
        self, z: torch.Tensor, labels: torch.Tensor, truncation: float | None = None
    ) -> torch.Tensor:
        psi = 1.0 if truncation is None else float(truncation)
        x = self.net(z, labels.to(z.dtype), truncation_psi=psi, noise_mode="const")
        return x.add(1.0).mul(0.5).clamp(0.0, 1.0)

    def to_latent(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.net.mapping(z, None if labels is None else labels.to(z.dtype))

    def latent_start(self, labels: torch.Tensor | None) -> torch.Tensor:
        return self.net.mapping.w_avg_for(labels).clone()

    def render(self, latent: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        ws = latent[:, None].expand(-1, self.style_layers, -1)
        return self.render_styles(ws, labels)

    def render_styles(self, ws: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.net.synthesis(ws, "const").add(1.0).mul(0.5).clamp(0.0, 1.0)

    forward = sample
