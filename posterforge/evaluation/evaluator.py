"""``evaluate``: how close a generator's images are to a real set, overall and per label.

    real images ─► extractor ─► real features ─┬─► FID, KID (torchmetrics) overall and per label
    sample(row, n) per label ─► extractor ─────┼─► precision / recall (k-NN manifolds)
                                               └─► label consistency (classifier on real features)

Model-agnostic: a generator is only a ``sample(label_row, n)`` callable, a label only a column of
``real_labels`` with a name. Every input is checked before any image is made or extracted, so bad
input costs nothing and fails with one message a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict, Unpack

import torch

from posterforge.errors import PosterforgeError
from posterforge.evaluation import metrics
from posterforge.evaluation.consistency import label_consistency
from posterforge.evaluation.features import FeatureExtractor

MIN_SAMPLES = 10  # per set and per label; FID/KID from so few images are noisy, not undefined
Sampler = Callable[[torch.Tensor | None, int], torch.Tensor]
Progress = Callable[[int, int], None]


@dataclass
class GroupScores:
    """FID and KID of one label's generated images against the real images carrying it."""

    fid: float
    kid_mean: float
    kid_std: float
    n_real: int
    n_fake: int


@dataclass
class EvalReport:
    """Every number holds only for ``extractor``: print its name next to them."""

    extractor: str
    extractor_description: str
    n_real: int
    n_fake: int
    fid: float
    kid_mean: float
    kid_std: float
    kid_subset_size: int
    precision: float
    recall: float
    k: int
    label_consistency: float | None  # None when unconditional
    classifier_accuracy: float | None  # the classifier on held-out real images: the ceiling
    per_label: dict[str, GroupScores]
    seed: int
    # labels in the overall figures without per-label ones: too few real images (name -> count)
    skipped_labels: dict[str, int] = field(default_factory=dict)
    min_samples: int = MIN_SAMPLES  # what a label needed for its own figures

    def skipped_note(self) -> str | None:
        """One line naming the labels without per-label figures, or None."""
        if not self.skipped_labels:
            return None
        named = ", ".join(f"{k} ({v})" for k, v in self.skipped_labels.items())
        return (
            f"posterforge: note: no per-label figures for {named}: under {self.min_samples} real "
            "images each (they are in the overall figures; --label a,b restricts the labels)"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


class Tuning(TypedDict, total=False):
    """:func:`evaluate`'s finer keywords: ``k`` (neighbours for precision/recall, 3),
    ``kid_subset_size`` (None: min(1000, the counts compared)), ``min_samples`` (per set and per
    label, :data:`MIN_SAMPLES`), ``batch_size`` (64), ``progress(done, total)``,
    ``real_features`` (``(N, D)`` float64 of ``real`` by this extractor, computed before: their
    pass is skipped; a training run's held-out images stay the same from pass to pass)."""

    k: int
    kid_subset_size: int | None
    min_samples: int
    batch_size: int
    progress: Progress | None
    real_features: torch.Tensor | None


def evaluate(
    real: torch.Tensor,
    real_labels: torch.Tensor | None,
    sample: Sampler,
    label_names: Sequence[str] | None,
    n: int,
    extractor: FeatureExtractor,
    seed: int = 0,
    **tuning: Unpack[Tuning],
) -> EvalReport:
    """Compare ``n`` generated images with ``real`` ``(N, 3, H, W)`` (float, ``[0, 1]``, CPU).

    Unconditional (``real_labels`` and ``label_names`` None): ``sample(None, n)``. Conditional:
    ``real_labels`` ``(N, L)`` multi-hot, one column per name in ``label_names``; ``n`` is split
    over the labels in proportion to their real images (at least ``min_samples`` each) and label
    ``j``'s share is drawn as ``sample(one_hot_j, m)``, a one-hot row ``(L,)``, in batches of at
    most ``batch_size``; each call must return ``(m, 3, H', W')`` in ``[0, 1]``. Sampling runs
    under ``torch.manual_seed(seed)`` (the caller's RNG state is restored afterwards).

    ``extractor``: what the features come from, which the numbers hold for (the first one the
    plugins registered: :func:`~posterforge.evaluation.default_extractor` of a context).

    A label with fewer than ``needed`` real images gets no per-label figures (its name and count
    are in ``skipped_labels``); its images and its share of ``n`` still count overall. Only the
    whole set needs ``needed`` real images.

    ``kid_subset_size`` None: each comparison uses half its smaller set, at most 1000 (see
    :meth:`_Kid.subset`).
    ``progress(done, total)`` counts images through the extractor (see :class:`Tuning`).
    """
    unknown = sorted(set(tuning) - set(Tuning.__annotations__))
    if unknown:
        raise TypeError(f"evaluate() got unexpected keyword arguments: {', '.join(unknown)}")
    k, kid_size = tuning.get("k", 3), tuning.get("kid_subset_size")
    batch_size = tuning.get("batch_size", 64)
    n_real = _check_real(real)
    rows = _check_labels(real_labels, label_names, n_real)
    needed = _needed(tuning.get("min_samples", MIN_SAMPLES), k, kid_size)
    plan = _plan(n_real, rows, label_names, n, needed)
    real_f = tuning.get("real_features")
    seen = n_real if real_f is None else 0
    extract = _Extract(extractor, seen + sum(g[2] for g in plan), tuning.get("progress"))
    with torch.no_grad():
        if real_f is None:
            real_f = torch.cat([extract(b) for b in real.split(batch_size)])
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            fakes = [_generate(sample, row, m, batch_size, extract) for _, row, m, _ in plan]
    fake_f = torch.cat([f for f in fakes if f.shape[0]])  # a rare label's share may be none
    kid = _Kid(kid_size, seed)
    kid_mean, kid_std = kid(real_f, fake_f)
    precision, recall = metrics.precision_recall(real_f, fake_f, k=k)
    per_label: dict[str, GroupScores] = {}
    consistency = accuracy = None
    if rows is not None:
        per_label, fake_rows = _per_label(plan, fakes, real_f, rows, kid)
        consistency, accuracy = label_consistency(real_f, rows, fake_f, fake_rows, seed=seed)
    return EvalReport(
        extractor=extractor.name,
        extractor_description=extractor.description,
        n_real=n_real,
        n_fake=fake_f.shape[0],
        fid=metrics.fid(real_f, fake_f),
        kid_mean=kid_mean,
        kid_std=kid_std,
        kid_subset_size=kid.subset(real_f, fake_f),
        precision=precision,
        recall=recall,
        k=k,
        label_consistency=consistency,
        classifier_accuracy=accuracy,
        per_label=per_label,
        seed=seed,
        skipped_labels=_skipped(plan, rows),
        min_samples=needed[0],
    )


def extract_features(
    images: torch.Tensor, extractor: FeatureExtractor, batch_size: int = 64
) -> torch.Tensor:
    """``(N, D)`` float64 on the CPU, as :func:`evaluate` extracts them (its ``real_features``)."""
    extract = _Extract(extractor, len(images), None)
    with torch.no_grad():
        return torch.cat([extract(b) for b in images.split(batch_size)])


class _Extract:
    """Features of a batch, on the extractor's device, back as float64 on the CPU; counts the
    images for ``progress(done, total)``."""

    def __init__(self, extractor: FeatureExtractor, total: int, progress: Progress | None):
        self.extractor, self.total, self.progress = extractor, total, progress
        self.device, self.done = _device(extractor), 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = self.extractor(images.to(self.device)).double().cpu()
        self.done += images.shape[0]
        if self.progress is not None:
            self.progress(self.done, self.total)
        return out


class _Kid:
    """KID of two feature sets with the run's subset size (None: min(1000, both counts))."""

    def __init__(self, subset_size: int | None, seed: int):
        self.subset_size, self.seed = subset_size, seed

    def subset(self, a: torch.Tensor, b: torch.Tensor) -> int:
        """The size asked, else half the smaller set (at least 2), at most 1000: subsets as big
        as the set would all be the set, and the spread over them would say nothing."""
        half = max(2, min(a.shape[0], b.shape[0]) // 2)
        return self.subset_size or min(metrics.KID_SUBSET_SIZE, half)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
        return metrics.kid(a, b, self.subset(a, b), seed=self.seed)


Plan = list[tuple[str | None, torch.Tensor | None, int, bool]]  # name, row, m, scored alone


def _skipped(plan: Plan, rows: torch.Tensor | None) -> dict[str, int]:
    if rows is None:
        return {}
    counts = rows.sum(dim=0).long().tolist()
    return {g[0]: counts[j] for j, g in enumerate(plan) if not g[3] and g[0] is not None}


def _per_label(
    plan: Plan,
    fakes: list[torch.Tensor],
    real_f: torch.Tensor,
    rows: torch.Tensor,
    kid: _Kid,
) -> tuple[dict[str, GroupScores], torch.Tensor]:
    """Each label's scores against the real images carrying it, and the rows the generated
    images were sampled for ``(M, L)``."""
    per_label: dict[str, GroupScores] = {}
    fake_rows = []
    for j, ((name, row, _, scored), feats) in enumerate(zip(plan, fakes, strict=True)):
        assert name is not None and row is not None
        fake_rows.append(row.expand(feats.shape[0], -1))
        if not scored:
            continue
        mine = real_f[rows[:, j] > 0]
        per_label[name] = GroupScores(
            metrics.fid(mine, feats), *kid(mine, feats), mine.shape[0], feats.shape[0]
        )
    return per_label, torch.cat(fake_rows)


def _device(module: torch.nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _check_real(real: torch.Tensor) -> int:
    if not isinstance(real, torch.Tensor) or real.ndim != 4 or real.shape[1] != 3:
        shape = tuple(real.shape) if isinstance(real, torch.Tensor) else type(real).__name__
        raise PosterforgeError(f"real images must be a (N, 3, H, W) tensor, got {shape}")
    if real.shape[0] == 0:
        raise PosterforgeError("no real images to compare with: check the data folder")
    if not real.is_floating_point():
        raise PosterforgeError(f"real images must be float in [0, 1], got {real.dtype}")
    _check_range(real, "the real images")
    return real.shape[0]


def _check_range(images: torch.Tensor, what: str) -> None:
    lo, hi = images.min().item(), images.max().item()
    if not (lo >= -1e-3 and hi <= 1 + 1e-3):  # also catches NaN
        raise PosterforgeError(f"{what} have values in [{lo:.3g}, {hi:.3g}]; expected [0, 1]")


def _check_labels(
    labels: torch.Tensor | None, names: Sequence[str] | None, n_real: int
) -> torch.Tensor | None:
    """Multi-hot rows ``(N, L)`` as float, or None for an unconditional evaluation."""
    if labels is None and names is None:
        return None
    if labels is None:
        raise PosterforgeError("label names were given but no label rows for the real images")
    if names is None:
        raise PosterforgeError("label rows were given without label names")
    names = list(names)
    if len(set(names)) != len(names):
        raise PosterforgeError(f"duplicate label names: {names}")
    if labels.ndim != 2 or labels.shape != (n_real, len(names)):
        raise PosterforgeError(
            f"label rows have shape {tuple(labels.shape)}, expected ({n_real}, {len(names)}): "
            f"one row per real image and one column per label ({', '.join(names)})"
        )
    rows = labels.double()
    if not bool(((rows == 0) | (rows == 1)).all()):
        raise PosterforgeError("label rows must be multi-hot (0 or 1 in every column)")
    unlabelled = (rows.sum(dim=1) == 0).nonzero().flatten().tolist()
    if unlabelled:
        raise PosterforgeError(
            f"{len(unlabelled)} real image(s) have no label (first: index {unlabelled[0]})"
        )
    return rows


def _needed(min_samples: int, k: int, kid_subset_size: int | None) -> tuple[int, str]:
    """The fewest images any compared set may have, and why."""
    if k < 1 or (kid_subset_size is not None and kid_subset_size < 2):
        raise PosterforgeError(
            f"k must be at least 1 and the KID subset size at least 2 (got {k}, {kid_subset_size})"
        )
    if kid_subset_size and kid_subset_size > max(min_samples, k + 1):
        return kid_subset_size, f"KID subsets of {kid_subset_size} images"
    if k + 1 > min_samples:
        return k + 1, f"precision/recall with k={k} neighbours"
    return min_samples, "the statistics"


def _plan(
    n_real: int,
    rows: torch.Tensor | None,
    names: Sequence[str] | None,
    n: int,
    needed: tuple[int, str],
) -> Plan:
    """``(label name, one-hot row (L,), how many to generate, scored alone)`` per group, in
    label order, after checking that the whole set has at least ``needed[0]`` images. A label
    with fewer real images is generated in proportion only and not scored alone."""
    need, why = needed
    _check_count("real images", n_real, needed)
    if n < need:
        raise PosterforgeError(
            f"{n} generated images are too few: {why} need at least {need}; ask for more"
        )
    if rows is None:
        return [(None, None, n, True)]
    names = list(names or ())
    counts = rows.sum(dim=0).long().tolist()
    eye = torch.eye(len(names))
    return [
        (name, eye[j], max(need, m) if c >= need else m, c >= need)
        for j, (name, c, m) in enumerate(zip(names, counts, _split(n, counts), strict=True))
    ]


def _split(n: int, counts: list[int]) -> list[int]:
    """``n`` in proportion to ``counts``, summing to ``n`` (largest remainders round up)."""
    shares = [n * c / sum(counts) for c in counts]
    out = [int(s) for s in shares]
    by_remainder = sorted(range(len(counts)), key=lambda j: out[j] - shares[j])
    for j in by_remainder[: n - sum(out)]:
        out[j] += 1
    return out


def _check_count(what: str, count: int, needed: tuple[int, str]) -> None:
    need, why = needed
    if count < need:
        raise PosterforgeError(f"only {count} {what}: {why} need at least {need}")


def _generate(
    sample: Sampler,
    row: torch.Tensor | None,
    m: int,
    batch_size: int,
    extract: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Features ``(m, D)`` of ``m`` images from ``sample``, drawn ``batch_size`` at a time."""
    out, left = [], m
    while left:
        b = min(batch_size, left)
        images = sample(row, b)
        if not isinstance(images, torch.Tensor) or images.shape[:2] != (b, 3) or images.ndim != 4:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise PosterforgeError(
                f"the generator returned {got} for {b} images, expected ({b}, 3, H, W)"
            )
        _check_range(images, "generated images")
        out.append(extract(images.float()))
        left -= b
    return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.float64)
