"""Distances between a real and a generated feature set ``(N, D)`` / ``(M, D)``.

FID and KID are torchmetrics' own: the features are extracted once (they also feed precision,
recall and the label classifier) and handed to torchmetrics through a pass-through ``feature``
module, so the statistics are never hand-written. Precision and recall (k-NN manifolds) are not in
torchmetrics and are written out here.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000  # torchmetrics' default; smaller sets use all their samples


class _Precomputed(nn.Module):
    """A torchmetrics ``feature`` network whose inputs already are features ``(B, D)``."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to ``real`` ``(N, D)`` and ``fake`` ``(M, D)``
    (N, M >= 2), in float64."""
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    subset_size: int,
    *,
    subsets: int = KID_SUBSETS,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel (cubic polynomial MMD) distance: mean and std over ``subsets`` random subsets of
    ``subset_size`` (<= N and M) from each set. Seeded: torchmetrics draws them from torch's
    global RNG, which is forked so that the caller's stream is untouched."""
    with warnings.catch_warnings():  # that it keeps every feature: so do we, by design
        warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance` will save")
        metric = KernelInceptionDistance(
            feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=subset_size
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # the subsets are drawn on the CPU
        torch.default_generator.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _kth_neighbour_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """``(N, D)`` -> ``(N,)``: distance from each row to its k-th nearest other row."""
    radii = [torch.cdist(part, x).kthvalue(k + 1, dim=1).values for part in x.split(chunk)]
    return torch.cat(radii)  # k + 1: the row itself is its own nearest, at distance 0


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int):
    """``(P,)`` bool: whether each point lies in at least one ball ``(centre, radius)``."""
    return torch.cat(
        [(torch.cdist(part, centres) <= radii).any(dim=1) for part in points.split(chunk)]
    )


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` ``(M, D)`` against
    ``real`` ``(N, D)``; needs N, M > k.

    Each set's manifold is the union of balls around its points reaching their k-th nearest
    neighbour. Precision: share of fakes inside the real manifold (are samples realistic?).
    Recall: share of reals inside the fake manifold (is the real variety covered?): a generator
    that collapses to a few images has tiny balls and low recall.
    """
    real, fake = real.double(), fake.double()
    precision = _inside(fake, real, _kth_neighbour_radius(real, k, chunk), chunk)
    recall = _inside(real, fake, _kth_neighbour_radius(fake, k, chunk), chunk)
    return precision.double().mean().item(), recall.double().mean().item()
