"""Translator quality on held-out images: FID of ``forward(A)`` against ``B`` and of
``backward(B)`` against ``A`` (the same FID as ``posterforge eval``'s, :mod:`.metrics`), and
the cycle reconstruction error ``|backward(forward(A)) - A|`` (and B's), mean absolute, in
``[0, 1]`` units."""

from __future__ import annotations

from collections.abc import Callable

import torch

from posterforge.evaluation import metrics
from posterforge.evaluation.features import FeatureExtractor, default_extractor
from posterforge.plugins import get_host

Translate = Callable[[torch.Tensor], torch.Tensor]  # (B, 3, H, W) in [0, 1] -> the same shape


def translator_metrics(
    forward: Translate,
    backward: Translate,
    a: torch.Tensor,
    b: torch.Tensor,
    extractor: FeatureExtractor | None = None,
    batch_size: int = 16,
) -> dict[str, float]:
    """``{"fid_a2b", "fid_b2a", "cycle_a", "cycle_b"}`` for held-out ``a`` and ``b`` (both
    ``(N, 3, H, W)`` in ``[0, 1]``, the same N >= 2, on the nets' device)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(
            f"translator metrics need as many A as B images, 2 or more: {len(a)}, {len(b)}"
        )
    extractor = extractor if extractor is not None else default_extractor(get_host())
    extractor = extractor.to(a.device)
    feats: dict[str, list[torch.Tensor]] = {k: [] for k in ("a", "b", "fake_a", "fake_b")}
    cycle = {"a": 0.0, "b": 0.0}
    with torch.no_grad():
        for real_a, real_b in zip(a.split(batch_size), b.split(batch_size), strict=True):
            fake_b, fake_a = forward(real_a).clamp(0, 1), backward(real_b).clamp(0, 1)
            cycle["a"] += float(
                (backward(fake_b).clamp(0, 1) - real_a).abs().mean(dim=(1, 2, 3)).sum()
            )
            cycle["b"] += float(
                (forward(fake_a).clamp(0, 1) - real_b).abs().mean(dim=(1, 2, 3)).sum()
            )
            for key, x in (("a", real_a), ("b", real_b), ("fake_a", fake_a), ("fake_b", fake_b)):
                feats[key].append(extractor(x.float()).double().cpu())
    f = {k: torch.cat(v) for k, v in feats.items()}
    n = len(a)
    return {
        "fid_a2b": metrics.fid(f["b"], f["fake_b"]),
        "fid_b2a": metrics.fid(f["a"], f["fake_a"]),
        "cycle_a": cycle["a"] / n,
        "cycle_b": cycle["b"] / n,
    }
