"""Generator quality on held-out images while a generator family trains: the FID, KID,
precision, recall and label consistency of ``posterforge eval`` (:func:`.evaluator.evaluate`,
one implementation) of a sampling callable against the run's held-out real images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from posterforge.evaluation.features import FeatureExtractor

# (z (B, z_dim), conditions (B, L) or None) -> (B, 3, H, W) in [0, 1], on the nets' device
Sample = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def generator_metrics(
    sample: Sample,
    z_dim: int,
    real: torch.Tensor,
    rows: torch.Tensor | None,
    label_names: Sequence[str] | None,
    extractor: FeatureExtractor | None = None,
    batch_size: int = 32,
    cache: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """``{"fid", "kid", "precision", "recall"}`` and, for a conditional generator (``rows``
    ``(N, L)`` multi-hot and ``label_names``), ``"label_consistency"``: as many generated images
    as ``real`` ``(N, 3, H, W)`` held-out images (``[0, 1]``), shared over the labels in
    proportion, from the same seeded noise on every call (seed 0), so that a curve compares the
    nets and not the draws. ``extractor`` None: the context's default (the first registered).
    ``cache`` (a dict the caller keeps from pass to pass, for the same ``real``): the extractor
    and the real images' features, made on the first call and reused after it."""
    from posterforge.evaluation import features
    from posterforge.evaluation.evaluator import evaluate, extract_features

    cache = {} if cache is None else cache
    device = real.device
    if extractor is None:
        extractor = cache.get("extractor")
    if extractor is None:
        from posterforge.plugins import get_host

        extractor = cache["extractor"] = features.default_extractor(get_host())
    extractor = extractor.to(device)
    if "real" not in cache:
        cache["real"] = extract_features(real.float(), extractor, batch_size)

    def draw(row: torch.Tensor | None, m: int) -> torch.Tensor:
        z = torch.randn(m, z_dim).to(device)  # evaluate seeds the global generator
        conditions = None if row is None else row.reshape(1, -1).float().repeat(m, 1).to(device)
        return sample(z, conditions).float().clamp(0, 1).cpu()

    report = evaluate(
        real.float().cpu(),
        None if rows is None else rows.float().cpu(),
        draw,
        None if rows is None else list(label_names or ()),
        len(real),
        extractor,
        seed=0,
        batch_size=batch_size,
        real_features=cache["real"],
    )
    values = {
        "fid": report.fid,
        "kid": report.kid_mean,
        "precision": report.precision,
        "recall": report.recall,
    }
    if report.label_consistency is not None:
        values["label_consistency"] = report.label_consistency
    return values
