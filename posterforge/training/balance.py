"""Evening out how often each label is seen (:func:`balance`), and the per-label counts table."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from posterforge.labels import LabelSet
from posterforge.training.labelled_data import LabelledImage, label_counts

BALANCE_MODES = ("cap", "resample", "none")


def balance(
    items: Sequence[LabelledImage],
    n_labels: int,
    mode: str,
    seed: int = 0,
    cap: int | None = None,
) -> list[LabelledImage]:
    """Even out how often each label is seen (the poster reference work balanced 41k posters
    down to 32k this way).

    * ``cap``: visit the items in a seeded random order and keep one while any of its labels is
      still under ``cap`` (default: the mean count of the labels present). Common labels lose
      images; rare labels keep all of theirs.
    * ``resample``: draw ``len(items)`` items with replacement, each with weight
      ``max(1 / count(g) for its labels g)``, so every label is seen about equally often.
    * ``none``: the items as they are.
    """
    if mode not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}, not {mode!r}")
    items = list(items)
    if mode == "none" or not items:
        return items
    counts = np.asarray(label_counts(items, n_labels), dtype=np.float64)
    rng = np.random.default_rng((seed, 7919))
    if mode == "resample":
        weights = np.array([max(1.0 / counts[i] for i in it.labels) for it in items])
        picks = rng.choice(len(items), size=len(items), replace=True, p=weights / weights.sum())
        return [items[i] for i in picks]
    if cap is None:
        cap = int(np.ceil(counts[counts > 0].mean()))
    if cap < 1:
        raise ValueError("balance cap must be at least 1")
    kept, seen = [], np.zeros(n_labels, dtype=np.int64)
    for idx in rng.permutation(len(items)):
        item = items[idx]
        if any(seen[i] < cap for i in item.labels):
            kept.append(item)
            seen[list(item.labels)] += 1
    kept.sort(
        key=lambda it: (os.fspath(it.path), it.labels)
    )  # keep file order; the stream shuffles
    return kept


def counts_table(labels: LabelSet, before: Sequence[int], after: Sequence[int]) -> str:
    """Per-label counts before and after balancing, as plain text for the terminal."""
    width = max(len(n) for n in labels.names)
    width = max(width, len(labels.noun))
    lines = [f"{labels.noun:<{width}}  {'found':>7}  {'used':>7}"]
    rows = zip(labels.names, before, after, strict=True)
    lines += [f"{n:<{width}}  {b:>7}  {a:>7}" for n, b, a in rows]
    return "\n".join(lines)
