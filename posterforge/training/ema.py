"""The exponential moving average of a generator's weights, for any family that samples from it.

StyleGAN2-ADA's ramp: early on the decay is lower, so short runs are not mostly initial weights.
Buffers (batch-norm statistics, a tracked latent average, constant noise) are copied, not
averaged: they follow the trained network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def ema_decay_at(decay: float, step: int) -> float:
    """The decay to use after ``step`` (counting from 0): ``decay``, ramped in."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, raw: nn.Module, decay: float, step: int) -> None:
    """Move ``ema``'s parameters toward ``raw``'s (``decay`` 0: copy them); copy the buffers."""
    d = ema_decay_at(decay, step) if decay > 0 else 0.0
    e, r = list(ema.parameters()), list(raw.parameters())
    if d == 0.0:
        torch._foreach_copy_(e, r)
    else:
        torch._foreach_lerp_(e, r, 1.0 - d)
    for b_ema, b in zip(ema.buffers(), raw.buffers(), strict=True):
        b_ema.copy_(b)


@torch.no_grad()
def label_grid(
    sample: torch.nn.Module | object,
    real: torch.Tensor,
    n_labels: int,
    z_dim: int,
    device: torch.device,
    columns: int = 6,
    names: Sequence[str] = (),
) -> torch.Tensor:
    """A sample grid for a conditional generator: a row of ``real`` images (``[0, 1]``), then one
    row per label, every row with the same fixed noise. ``sample(z, y)`` returns ``[-1, 1]``.
    With ``names`` (the labels' names) each row has its caption line, as ``generate --grid``
    draws them (``real`` above the real row)."""
    z = torch.randn(columns, z_dim, generator=torch.Generator().manual_seed(1))
    z = z.repeat(n_labels, 1).to(device)
    y = torch.eye(n_labels).repeat_interleave(columns, dim=0).to(device)
    fakes = sample(z, y).add(1).mul(0.5)  # type: ignore[operator]
    real = real[:columns].to(device)
    if len(real) < columns:
        pad = torch.ones(columns - len(real), *real.shape[1:], device=device)
        real = torch.cat([real, pad])
    tiles = torch.cat([real, fakes.to(real.dtype)]).clamp(0, 1).float().cpu()
    if not names:
        from torchvision.utils import make_grid

        return make_grid(tiles, nrow=columns, padding=2, pad_value=1.0)
    from posterforge.sheet import labelled_sheet

    images = tiles.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rows = [images[i * columns : (i + 1) * columns] for i in range(n_labels + 1)]
    captions = ["real", *names]
    sheet = labelled_sheet(list(zip(captions, rows, strict=True)), columns=columns, gap=2)
    return torch.from_numpy(sheet.copy()).permute(2, 0, 1).float().div(255)
