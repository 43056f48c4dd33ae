"""The mapping network: z and the condition c to the intermediate latent w, with a per-label
average of w for truncation toward the label asked for."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from posterforge_stylegan.blocks import EqualLinear, pixel_norm


class MappingNetwork(nn.Module):
    """z and the condition vector c to the intermediate latent w.

    ``z`` is normalised to unit second moment; ``c`` (one-hot, multi-hot or a weighted mix of
    labels) goes through a learned embedding (linear, no bias), is normalised the same way, and
    is concatenated to z; an MLP of ``n_layers`` equalized layers (slowed by ``lr_mul``) maps
    the result to w. ``c_dim == 0`` is an unconditional network (no embedding, ``c`` is None).

    The buffer ``w_avg`` ``(max(c_dim, 1), w_dim)`` tracks the average w of each label, for
    truncation toward the requested label rather than a global average: in training mode each
    row moves (EMA, ``w_avg_beta``) toward the mean w of the batch's samples that carry that
    label, weighted by the label's weight in c.

    ``forward(z, c, truncation_psi)``: ``(B, z_dim)`` and ``(B, c_dim)`` to ``(B, w_dim)``.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        embed_dim: int,
        n_layers: int,
        lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.w_avg_beta = w_avg_beta
        self.embed = EqualLinear(c_dim, embed_dim, bias=False) if c_dim > 0 else None
        dims = [z_dim + (embed_dim if c_dim > 0 else 0)] + [w_dim] * n_layers
        self.net = nn.Sequential(
            *(
                EqualLinear(i, o, lr_mul=lr_mul, activation=True)
                for i, o in itertools.pairwise(dims)
            )
        )
        self.register_buffer("w_avg", torch.zeros(max(c_dim, 1), w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        update_w_avg: bool | None = None,
    ) -> torch.Tensor:
        """``update_w_avg`` defaults to ``self.training`` (pass False for the second latent of
        style mixing, which is not a sample of its own)."""
        c = self._check_c(c, z.shape[0])
        x = pixel_norm(z)
        if self.embed is not None:
            x = torch.cat([x, pixel_norm(self.embed(c.to(x.dtype)))], dim=1)
        w = self.net(x)
        update = self.training if update_w_avg is None else update_w_avg
        if update:
            self._update_w_avg(w.detach(), c)
        if truncation_psi != 1.0:
            w = self.w_avg_for(c).to(w.dtype).lerp(w, truncation_psi)
        return w

    @torch.no_grad()
    def _update_w_avg(self, w: torch.Tensor, c: torch.Tensor | None) -> None:
        w = w.to(self.w_avg.dtype)
        if c is None:
            self.w_avg.copy_(w.mean(dim=0, keepdim=True).lerp(self.w_avg, self.w_avg_beta))
            return
        weight = c.to(w.dtype).clamp_min(0.0)  # (B, c_dim)
        total = weight.sum(dim=0)  # each label's weight in the batch
        label_mean = (weight.t() @ w) / total.clamp_min(1e-8)[:, None]  # (c_dim, w_dim)
        moved = label_mean.lerp(self.w_avg, self.w_avg_beta)
        self.w_avg.copy_(torch.where(total[:, None] > 0, moved, self.w_avg))  # absent: unmoved

    def w_avg_for(self, c: torch.Tensor | None) -> torch.Tensor:
        """The average w for each condition: ``(B, c_dim)`` to ``(B, w_dim)``, the rows of
        ``w_avg`` combined with the condition's weights normalised to sum 1 (so
        ``horror:0.7+comedy:0.3`` truncates toward 0.7 horror's average + 0.3 comedy's). A zero
        condition gets the mean over labels. Unconditional: ``(1, w_dim)``."""
        if self.embed is None:
            return self.w_avg
        c = self._check_c(c, None).to(self.w_avg.dtype).clamp_min(0.0)
        total = c.sum(dim=1, keepdim=True)
        uniform = torch.full_like(c, 1.0 / self.c_dim)
        weight = torch.where(total > 0, c / total.clamp_min(1e-8), uniform)
        return weight @ self.w_avg

    def _check_c(self, c: torch.Tensor | None, batch: int | None) -> torch.Tensor | None:
        if self.c_dim == 0:
            return None
        if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"condition of shape {got}: expected (B, {self.c_dim})")
        if batch is not None and c.shape[0] != batch:
            raise ValueError(f"{c.shape[0]} conditions for a batch of {batch}")
        return c
