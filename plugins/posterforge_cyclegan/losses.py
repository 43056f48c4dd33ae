"""The CycleGAN losses as small functions. ``d_*`` are the discriminator's (critic's) losses,
``g_*`` the generators' adversarial terms; all take raw discriminator outputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def d_lsgan(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017): real patches -> 1, fake -> 0, halved as in CycleGAN."""
    real = F.mse_loss(real_scores, torch.ones_like(real_scores))
    fake = F.mse_loss(fake_scores, torch.zeros_like(fake_scores))
    return 0.5 * (real + fake)


def g_lsgan(fake_scores: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(fake_scores, torch.ones_like(fake_scores))


def d_wgan(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss (Arjovsky et al. 2017); add :func:`gradient_penalty` to it."""
    return fake_scores.mean() - real_scores.mean()


def g_wgan(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``E[(||grad critic(x_hat)||_2 - 1)^2]`` at random points
    ``x_hat`` between real and fake samples (one mixing weight per sample)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def cycle(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle consistency: ``l1(G_BA(G_AB(a)), a)``."""
    return F.l1_loss(reconstructed, original)


def identity(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Identity: ``l1(G_AB(b), b)``: a generator should leave its target domain alone."""
    return F.l1_loss(mapped, original)
