"""Label consistency: does a generated image look like the label it was asked for?

A multinomial logistic regression on the real set's features (standardised) stands in for a
human judge. It is scored the same way on held-out real images and on generated ones: a hit is
an image whose top predicted label is among its labels (the real row, or the row asked for), so
the held-out accuracy is the ceiling a perfect generator would reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

HELD_OUT = 0.2
STEPS = 300


@dataclass
class LabelClassifier:
    """Linear classifier ``(N, D)`` features -> ``(N, L)`` logits."""

    mean: torch.Tensor  # (D,)
    scale: torch.Tensor  # (D,)
    weight: torch.Tensor  # (D, L)
    bias: torch.Tensor  # (L,)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return ((features.double() - self.mean) / self.scale) @ self.weight + self.bias

    def hits(self, features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``(N,)`` bool: the top label of each image is set in its multi-hot row ``(N, L)``."""
        top = self.logits(features).argmax(dim=1)
        return rows.gather(1, top[:, None]).squeeze(1) > 0


def train_classifier(
    features: torch.Tensor,
    rows: torch.Tensor,
    *,
    steps: int = STEPS,
    weight_decay: float = 1e-3,
) -> LabelClassifier:
    """Full-batch Adam on soft-max cross-entropy; a multi-hot row is a target spread evenly over
    its labels, so the top prediction is pulled toward any of them. Deterministic (zero init,
    full batch)."""
    # Outside inference mode even when called under it: the weights need gradients.
    with torch.inference_mode(False), torch.enable_grad():
        x = features.detach().double().clone()
        mean, scale = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
        x = (x - mean) / scale
        target = rows.double() / rows.double().sum(dim=1, keepdim=True)
        weight = torch.zeros(x.shape[1], rows.shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(rows.shape[1], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([weight, bias], lr=0.05)
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(x @ weight + bias, target)
            (loss + weight_decay * weight.square().sum()).backward()
            opt.step()
    return LabelClassifier(mean, scale, weight.detach(), bias.detach())


def label_consistency(
    real: torch.Tensor,
    real_rows: torch.Tensor,
    fake: torch.Tensor,
    fake_rows: torch.Tensor,
    *,
    seed: int = 0,
) -> tuple[float, float]:
    """``(score, held-out accuracy)``: train on a seeded 80 % of the real features ``(N, D)``
    with rows ``(N, L)``, measure the accuracy on the other 20 %, and the score on the generated
    features ``(M, D)`` against the rows they were sampled for ``(M, L)``."""
    n = real.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = max(1, round(n * HELD_OUT))
    test, train = order[:held], order[held:]
    clf = train_classifier(real[train], real_rows[train])
    accuracy = clf.hits(real[test], real_rows[test]).double().mean().item()
    return clf.hits(fake, fake_rows).double().mean().item(), accuracy
