"""The contract between the generic training harness and a model family's training step.

The harness (``posterforge.training.harness``) owns the loop, seeds, data order, checkpoints,
exact resume, logging, sample grids and DDP set-up. A family (CycleGAN, the genre cGAN, ...)
implements :class:`TrainingTask` in its plugin: what one step does, what state it has, what a
sample grid shows, and how the result is exported in our weight format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class TrainingTask(Protocol):
    """One model family's training, driven step by step by the harness."""

    def step(self, batch: Any, step: int) -> Mapping[str, torch.Tensor | float]:
        """Run one optimisation step on ``batch`` (already on the device); return losses and any
        scalar worth logging (learning rates, loss weights) as 0-d tensors (detached) or floats.
        ``step`` counts from 0 and drives schedules. Do not call ``.item()`` or ``float()`` on a
        device tensor here: the harness reads the values, with one host sync, only on the steps
        it logs, so an accelerator's queue never stalls on the other steps."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: nets, optimisers, schedulers, EMA, pools,
        augmentation state. Only tensors, numbers, strings and (nested) lists/dicts of them, so
        that it loads with ``torch.load(weights_only=True)``."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def sample_grid(self, batch: Any) -> torch.Tensor:
        """A ``(3, H, W)`` image in ``[0, 1]`` for the run's sample folder, e.g. rows of
        A, G_AB(A), G_BA(G_AB(A)). ``batch`` is the same fixed batch every time (the run's first
        one). Called on rank 0 only, under ``torch.no_grad()``, with every RNG state saved and
        restored around it, so sampling never changes the course of training."""

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The finished model as ``(tensors, header)`` for ``posterforge.weights.save_weights``."""


def scalars(values: Mapping[str, Any]) -> dict[str, float]:
    """A step's values as floats, with one host sync for all its tensors."""
    import torch

    keys = [k for k, v in values.items() if isinstance(v, torch.Tensor)]
    out = {k: float(v) for k, v in values.items() if not isinstance(v, torch.Tensor)}
    if keys:
        stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys])
        out.update(zip(keys, stacked.tolist(), strict=True))
    return {k: out[k] for k in values}
