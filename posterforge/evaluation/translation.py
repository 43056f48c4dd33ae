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
    backward: Translate | None,
    a: torch.Tensor,
    b: torch.Tensor,
    extractor: FeatureExtractor | None = None,
    batch_size: int = 16,
) -> dict[str, float]:
    """``{"fid_a2b", "fid_b2a", "cycle_a", "cycle_b"}`` for held-out ``a`` and ``b`` (both
    ``(N, 3, H, W)`` and ``(M, 3, H', W')`` in ``[0, 1]``, N, M >= 2, on the nets' device);
    ``backward`` None (a translator of one direction): ``{"fid_a2b"}`` alone."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"translator metrics need 2 or more A and B images: {len(a)}, {len(b)}")
    extractor = extractor if extractor is not None else default_extractor(get_host())
    extractor = extractor.to(a.device)

    def feats(x: torch.Tensor) -> torch.Tensor:
        return extractor(x.float()).double().cpu()

    f: dict[str, list[torch.Tensor]] = {k: [] for k in ("a", "b", "fake_a", "fake_b")}
    cycle = {"a": 0.0, "b": 0.0}
    with torch.no_grad():
        for real_a in a.split(batch_size):
            fake_b = forward(real_a).clamp(0, 1)
            f["a"].append(feats(real_a))
            f["fake_b"].append(feats(fake_b))
            if backward is not None:
                rec = backward(fake_b).clamp(0, 1)
                cycle["a"] += float((rec - real_a).abs().mean(dim=(1, 2, 3)).sum())
        for real_b in b.split(batch_size):
            f["b"].append(feats(real_b))
            if backward is not None:
                fake_a = backward(real_b).clamp(0, 1)
                f["fake_a"].append(feats(fake_a))
                rec = forward(fake_a).clamp(0, 1)
                cycle["b"] += float((rec - real_b).abs().mean(dim=(1, 2, 3)).sum())
    out = {"fid_a2b": metrics.fid(torch.cat(f["b"]), torch.cat(f["fake_b"]))}
    if backward is not None:
        out["fid_b2a"] = metrics.fid(torch.cat(f["a"]), torch.cat(f["fake_a"]))
        out["cycle_a"], out["cycle_b"] = cycle["a"] / len(a), cycle["b"] / len(b)
    return out
