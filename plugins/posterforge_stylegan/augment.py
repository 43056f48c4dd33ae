"""Adaptive discriminator augmentation (Karras et al. 2020, StyleGAN2-ADA) on kornia.

Every image D sees, real or fake, passes through the same random augmentations, each applied per
sample with probability ``p``; D cannot tell augmented reals from augmented fakes, so G learns the
clean distribution (the ops are "non-leaking" while ``p < 1``). ``p`` adapts to over-fitting: the
heuristic ``r_t = E[sign(D(real))]`` grows toward 1 as D memorises the reals, and every ``interval``
steps ``p`` moves by ``sign(r_t - target) * batch * interval / (speed_kimg * 1000)``.

Only poster-safe ops: x-flip, integer translation, isotropic scale and small rotation (one affine
warp with reflection padding), brightness, contrast and saturation. No 90 degree rotations: a
poster is not square. Batched on the images' device, differentiable (fakes keep their gradient).
Random draws come from the global torch RNG, which the training harness saves and restores.
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_grayscale
from kornia.enhance import adjust_brightness, adjust_contrast
from kornia.geometry.transform import get_affine_matrix2d, warp_affine
from torch import nn

from posterforge_stylegan.config import AugmentConfig

P_MAX = 1.0 - 2.0**-24  # the largest float32 below 1: p stays in [0, 1)


class AdaptiveAugment(nn.Module):
    """``forward(images)``: ``(B, 3, H, W)`` in ``[-1, 1]`` to the same shape, augmented.

    In a discriminator step::

        logits_real = D(augment(reals), c)
        augment.accumulate(logits_real)
        augment.adjust(batch_size)   # every step; moves p every `interval` calls

    The config (:class:`~posterforge_stylegan.config.AugmentConfig`) gives the initial ``p``
    and the op strengths; its ``target=None`` keeps ``p`` fixed. The state (``p``, the sign
    accumulators, the step count and the last ``r_t``) is in ``state_dict()``, plain tensors and
    ints, so resume continues exactly.
    Under DDP, all-reduce ``sign_sum`` and ``sign_count`` before ``adjust``.
    """

    def __init__(self, config: AugmentConfig | None = None):
        super().__init__()
        self.config = AugmentConfig() if config is None else config
        self.register_buffer("p", torch.tensor(min(self.config.p, P_MAX)))
        self.register_buffer("sign_sum", torch.zeros(()))  # sum of sign(D(real)) this interval
        self.register_buffer("sign_count", torch.zeros(()))  # how many logits that was
        self.register_buffer("rt", torch.zeros(()))  # r_t of the last adjustment
        self.steps = 0  # adjust() calls so far

    # --- the adaptive probability ---------------------------------------------------------------

    @property
    def r_t(self) -> float:
        """The over-fitting heuristic ``E[sign(D(real))]`` at the last adjustment, for logging."""
        return float(self.rt)

    @torch.no_grad()
    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record the signs of D's logits on (augmented) real images."""
        logits = real_logits.detach()
        self.sign_sum += torch.sign(logits).sum().to(self.sign_sum)
        self.sign_count += logits.numel()

    @torch.no_grad()
    def adjust(self, batch_size: int) -> bool:
        """Call once per discriminator step; every ``interval`` calls, move ``p`` toward the
        target and reset the accumulators. Returns whether ``p`` was updated."""
        self.steps += 1
        if self.config.target is None or self.steps % self.config.interval:
            return False
        if float(self.sign_count) == 0:  # nothing accumulated: no evidence to move on
            return False
        self.rt.copy_(self.sign_sum / self.sign_count)
        step = batch_size * self.config.interval / (self.config.speed_kimg * 1000.0)
        self.p.add_(torch.sign(self.rt - self.config.target) * step).clamp_(0.0, P_MAX)
        self.sign_sum.zero_()
        self.sign_count.zero_()
        return True

    def get_extra_state(self) -> dict:
        return {"steps": self.steps}

    def set_extra_state(self, state: dict) -> None:
        self.steps = int(state["steps"])

    # --- the augmentations ----------------------------------------------------------------------

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if float(self.p) <= 0.0:
            return images
        dtype = images.dtype
        x = images.float()  # warps and colour factors in float32, also under autocast
        x = self._geometry(x)
        x = self._colour(x)
        return x.to(dtype)

    def _chance(self, b: int, device: torch.device) -> torch.Tensor:
        """``(B,)`` bool: which samples get an op, each with probability ``p``."""
        return torch.rand(b, device=device) < self.p

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        """x-flip, integer translation, isotropic scale, rotation: one affine warp per sample."""
        b, _, h, w = x.shape
        dev = x.device
        flip = self._chance(b, dev)
        size = torch.tensor([w, h], device=dev, dtype=x.dtype)
        shift = torch.round((torch.rand(b, 2, device=dev) * 2 - 1) * self.config.translate * size)
        shifted = self._chance(b, dev)
        scale = torch.exp2(torch.randn(b, device=dev) * self.config.scale_std)
        scaled = self._chance(b, dev)
        angle = (torch.rand(b, device=dev) * 2 - 1) * self.config.rotate_max
        rotated = self._chance(b, dev)

        shift = torch.where(shifted[:, None], shift, 0.0)
        scale = torch.where(scaled, scale, 1.0)
        angle = torch.where(rotated, angle, 0.0)
        sx = torch.where(flip, -scale, scale)  # a negative x scale about the centre is the flip
        center = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=dev).expand(b, 2)
        matrix = get_affine_matrix2d(shift, center, torch.stack([sx, scale], dim=1), angle)
        warped = warp_affine(
            x, matrix[:, :2], (h, w), padding_mode="reflection", align_corners=True
        )
        moved = (flip | shifted | scaled | rotated)[:, None, None, None]
        return torch.where(moved, warped, x)  # untouched samples stay bit-exact

    def _colour(self, x: torch.Tensor) -> torch.Tensor:
        """Brightness (added), contrast (scaled about mid-grey 0), saturation (about luma)."""
        b, dev = x.shape[0], x.device
        brightness = torch.randn(b, device=dev) * self.config.brightness_std
        brightness = torch.where(self._chance(b, dev), brightness, 0.0)
        contrast = torch.exp2(torch.randn(b, device=dev) * self.config.contrast_std)
        contrast = torch.where(self._chance(b, dev), contrast, 1.0)
        saturation = torch.exp2(torch.randn(b, device=dev) * self.config.saturation_std)
        saturation = torch.where(self._chance(b, dev), saturation, 1.0)

        x = adjust_brightness(x, brightness, clip_output=False)
        x = adjust_contrast(x, contrast, clip_output=False)
        grey = rgb_to_grayscale(x)
        return torch.lerp(grey, x, saturation.view(b, 1, 1, 1))  # exact at weight 1
