"""A run's held-out images: picked from its data at the start (seeded), never trained on, and
scored by the family's metrics every ``eval_every`` steps (:mod:`.monitor`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    import torch

MIN_HELD_OUT = 10  # per set (and per label): FID/KID from fewer are noise


def split_held_out(
    paths: Sequence[Path], n: int, seed: int, what: str
) -> tuple[list[Path], list[Path]]:
    """``(train, held)``: ``n`` of ``paths`` picked by ``seed`` (the same on every rank) and the
    rest, both in their listed order; ``n`` 0: all for training. Too few to score, or none left
    to train on, is one line naming the numbers and the recipe key ``eval_images``."""
    paths = list(paths)
    if n == 0:
        return paths, []
    if n < MIN_HELD_OUT:
        raise PosterforgeError(
            f"{what}: eval_images = {n} holds out too few images for the metrics (at least "
            f"{MIN_HELD_OUT}): raise eval_images (--set eval_images={MIN_HELD_OUT})"
        )
    if n >= len(paths):
        raise PosterforgeError(
            f"{what}: eval_images = {n} leaves none of its {len(paths)} images to train on: "
            "lower eval_images"
        )
    picked = set(np.random.default_rng((seed, 7)).choice(len(paths), n, replace=False).tolist())
    train = [p for i, p in enumerate(paths) if i not in picked]
    held = [p for i, p in enumerate(paths) if i in picked]
    return train, held


def load_held_out(paths: Sequence[Path], size: int | tuple[int, int], fit: str) -> torch.Tensor:
    """``(N, 3, H, W)`` in ``[0, 1]``; an unreadable held-out image is one line naming it (a
    metric over a set that changes with the files' luck is no curve)."""
    import torch

    from posterforge.images import ImageError
    from posterforge.training.data import load_image

    out = []
    for p in paths:
        try:
            out.append(load_image(p, size, fit=fit))
        except ImageError as e:
            raise PosterforgeError(f"{p}: {e.reason} (a held-out image, for the metrics)") from None
    return torch.stack(out)
