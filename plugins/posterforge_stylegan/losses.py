"""StyleGAN2's losses as small functions. All take raw discriminator logits ``(B,)``; the
regularisers return the bare penalty and leave weights and lazy intervals to the training step
(StyleGAN2: ``r1_gamma / 2 * r1_penalty * r1_interval`` every ``r1_interval`` steps)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's logistic loss: ``softplus(-D(real)) + softplus(D(fake))``, means."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's non-saturating loss: ``softplus(-D(fake))``, mean."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``E ||grad_x D(x)||^2`` on real images, kept in the graph so
    that it trains D. ``real_images`` ``(B, C, H, W)`` must require grad and be what the logits
    were computed from (with ADA: the images before augmentation, as in StyleGAN2-ADA)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()


def path_length_penalty(
    fake_images: torch.Tensor,
    ws: torch.Tensor,
    pl_mean: torch.Tensor | float,
    decay: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Path-length regularisation (StyleGAN2): the Jacobian-vector norm ``|J_w^T y|`` for random
    image-space ``y`` should be the same for every w; ``pl_mean`` is its running mean.

    ``fake_images`` ``(B, 3, H, W)`` generated from ``ws`` ``(B, num_ws, w_dim)``; returns
    ``(penalty, new_pl_mean)``, the new mean detached (keep it in the checkpoint)."""
    h, w = fake_images.shape[2:]
    noise = torch.randn_like(fake_images) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((fake_images * noise).sum(), ws, create_graph=True)
    lengths = grad.pow(2).sum(dim=2).mean(dim=1).sqrt()  # (B,)
    pl_mean = torch.as_tensor(pl_mean, dtype=lengths.dtype, device=lengths.device)
    new_mean = pl_mean + decay * (lengths.detach().mean() - pl_mean)
    return (lengths - new_mean).pow(2).mean(), new_mean
