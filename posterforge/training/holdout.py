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


def split_labelled_held_out(
    labels: Sequence[Sequence[int]], names: Sequence[str], n: int, seed: int, what: str
) -> tuple[list[int], list[int]]:
    """``(train, held)`` indices into ``labels`` (each item's label indices): ``n`` images of
    every label held out, picked in a seeded order (an image counts for each of its labels, so
    a label may get more), the rest to train on, both in their listed order; ``n`` 0: all for
    training. Labels without images need none. A label with too few images to hold out ``n``
    and still train on one, or ``n`` under :data:`MIN_HELD_OUT`, is one line naming the
    labels, their counts and the recipe key ``eval_images``."""
    if n == 0:
        return list(range(len(labels))), []
    if n < MIN_HELD_OUT:
        raise PosterforgeError(
            f"{what}: eval_images = {n} holds out too few images of each label for the metrics "
            f"(at least {MIN_HELD_OUT} a label): raise eval_images "
            f"(--set eval_images={MIN_HELD_OUT})"
        )
    counts = np.zeros(len(names), dtype=np.int64)
    for row in labels:
        counts[list(row)] += 1
    short = [(names[j], int(c)) for j, c in enumerate(counts) if 0 < c <= n]
    if short:
        named = ", ".join(f"{name} ({c})" for name, c in short)
        raise PosterforgeError(
            f"{what}: eval_images = {n} holds out {n} images of each label for the metrics and "
            f"trains on the rest, so each label needs at least {n + 1}; too few: {named}. Give "
            "them more images, or set eval_images = 0 (no metrics while training)"
        )
    held_per = np.zeros(len(names), dtype=np.int64)
    picked = set()
    for i in np.random.default_rng((seed, 11)).permutation(len(labels)).tolist():
        row = list(labels[i])
        if any(held_per[j] < n for j in row):
            picked.add(i)
            held_per[row] += 1
    train = [i for i in range(len(labels)) if i not in picked]
    left = np.zeros(len(names), dtype=np.int64)
    for i in train:
        left[list(labels[i])] += 1
    starved = [names[j] for j in range(len(names)) if counts[j] and not left[j]]
    if starved:  # every image of a label also carried a label still short of n
        raise PosterforgeError(
            f"{what}: eval_images = {n} holds out every image of {', '.join(starved)} (they "
            "share images with labels still short of held-out ones): lower eval_images or give "
            "them more images"
        )
    return train, sorted(picked)
