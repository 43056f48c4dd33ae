"""The CycleGAN family's batches: two unpaired image folders, read as one resumable stream."""

from __future__ import annotations

import os
from typing import Any

import torch

from posterforge.plugin import ImageFolderStream


class UnpairedStream:
    """Two independent :class:`ImageFolderStream` (domains A and B, seeds ``seed`` and
    ``seed + 1``) whose ``next()`` is ``{"A": (B, 3, L, L), "B": (B, 3, L, L)}`` in ``[0, 1]``."""

    def __init__(
        self,
        a: str | os.PathLike[str],
        b: str | os.PathLike[str],
        batch_size: int,
        load_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 2,
    ):
        kw = dict(rank=rank, world_size=world_size, workers=workers)
        self.a = ImageFolderStream(a, batch_size, load_size, seed=seed, **kw)
        self.b = ImageFolderStream(b, batch_size, load_size, seed=seed + 1, **kw)

    def __next__(self) -> dict[str, torch.Tensor]:
        return {"A": next(self.a), "B": next(self.b)}

    def __iter__(self) -> UnpairedStream:
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"A": self.a.state_dict(), "B": self.b.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.a.load_state_dict(state["A"])
        self.b.load_state_dict(state["B"])

    def close(self) -> None:
        self.a.close()
        self.b.close()
