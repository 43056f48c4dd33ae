"""Batched, on-device data augmentation for training, built from kornia.

The random parameters come from torch's global RNG (the device's generator for CUDA tensors is not
used by kornia's samplers, which draw on the CPU), which the harness saves in every checkpoint, so
a resumed run draws exactly the crops and flips the uninterrupted run would have drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from kornia.augmentation import AugmentationSequential


def make_augment(
    size: int,
    *,
    flip: bool = True,
    scale: tuple[float, float] = (0.5, 1.0),
    color_jitter: bool = False,
) -> AugmentationSequential:
    """A module mapping a ``(B, 3, H, W)`` batch in ``[0, 1]`` to ``(B, 3, size, size)``: a random
    resized crop (area fraction in ``scale``), then optionally a horizontal flip and a mild colour
    jitter. Move it to the device with ``.to(device)``; it runs in the training step's graph."""
    import kornia.augmentation as K

    ops: list[torch.nn.Module] = [K.RandomResizedCrop((size, size), scale=scale)]
    if flip:
        ops.append(K.RandomHorizontalFlip())
    if color_jitter:
        ops.append(K.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.8))
    return K.AugmentationSequential(*ops, data_keys=["input"])


DIFFAUGMENT_OPS = ("translation", "cutout", "color")


def make_diffaugment(policy: str | list[str] | tuple[str, ...]) -> torch.nn.Module | None:
    """DiffAugment (Zhao et al. 2020) from kornia ops: applied to *both* the real and the fake
    batches that the discriminator sees, differentiable so the generator learns through it, which
    keeps a discriminator from memorising a small data set. ``policy`` names ops from
    :data:`DIFFAUGMENT_OPS` (``"translation,cutout,color"``); empty means none (returns None).

    Input and output ``(B, 3, H, W)`` in ``[0, 1]``; every sample draws its own parameters.
    """
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [n.strip() for n in names if n.strip()]
    unknown = sorted(set(names) - set(DIFFAUGMENT_OPS))
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(unknown)}: use {', '.join(DIFFAUGMENT_OPS)}"
        )
    if not names:
        return None
    import kornia.augmentation as K

    ops = {
        # shift by up to 1/8 of the size, zero fill (as DiffAugment)
        "translation": lambda: K.RandomAffine(degrees=0, translate=(0.125, 0.125), p=1.0),
        # one zeroed rectangle of a quarter of the area (half of each side on a 2:1 poster)
        "cutout": lambda: K.RandomErasing(scale=(0.25, 0.25), ratio=(2.0, 2.0), value=0.0, p=1.0),
        "color": lambda: K.ColorJiggle(brightness=0.3, contrast=0.3, saturation=0.5, p=1.0),
    }
    return K.AugmentationSequential(*(ops[n]() for n in names), data_keys=["input"])
