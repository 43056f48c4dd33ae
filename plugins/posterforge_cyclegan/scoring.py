"""The CycleGAN family's metrics while training: both generators on the held-out images."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from posterforge.plugin import translator_metrics


@contextmanager
def eval_mode(*nets: torch.nn.Module) -> Iterator[None]:
    """The nets in eval mode (as they translate once exported), their modes restored after."""
    was = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, w in zip(nets, was, strict=True):
            net.train(w)


def scores(
    g_ab: torch.nn.Module,
    g_ba: torch.nn.Module,
    held: dict[str, torch.Tensor],
    device: torch.device,
) -> dict[str, float]:
    """FID both ways and the cycle errors (:func:`translator_metrics`) on ``held`` ``{"A", "B"}``
    (``[0, 1]``; the nets work in ``[-1, 1]``)."""

    def to_unit(net: torch.nn.Module):
        return lambda x: net(x * 2 - 1).add(1).mul(0.5)

    with eval_mode(g_ab, g_ba):
        a, b = held["A"].to(device), held["B"].to(device)
        return translator_metrics(to_unit(g_ab), to_unit(g_ba), a, b)
