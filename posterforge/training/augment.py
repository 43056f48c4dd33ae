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
