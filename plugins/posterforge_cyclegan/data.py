"""The CycleGAN family's batches: two unpaired image folders, read as one resumable stream."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from posterforge.plugin import ImageFolderStream, list_images, load_held_out, split_held_out


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
        self.held_a: list[Path] = []  # set by held_out_split's caller: scored, never trained on
        self.held_b: list[Path] = []
        self.eval_size = load_size

    @staticmethod
    def held_out_split(
        a: str | os.PathLike[str], b: str | os.PathLike[str], n: int, seed: int
    ) -> tuple[Any, Any, list[Path], list[Path]]:
        """``(train_a, train_b, held_a, held_b)``: ``n`` images of each folder set aside, seeded
        (the same on every rank and on resume); ``n`` 0: the folders themselves, nothing held."""
        if n == 0:
            return a, b, [], []
        train_a, held_a = split_held_out(list_images(a), n, seed, f"--a {a}")
        train_b, held_b = split_held_out(list_images(b), n, seed + 1, f"--b {b}")
        return train_a, train_b, held_a, held_b

    def held_out(self) -> dict[str, torch.Tensor] | None:
        """The held-out images of both domains at the metric size (None: none held out)."""
        if not self.held_a:
            return None
        size = self.eval_size
        return {
            "A": load_held_out(self.held_a, size, "crop"),
            "B": load_held_out(self.held_b, size, "crop"),
        }

    def summary(self) -> dict[str, Any]:
        """What the run stores in request.json: the held-out file names (none: empty)."""
        if not self.held_a:
            return {}
        return {
            "held_out": {"a": [p.name for p in self.held_a], "b": [p.name for p in self.held_b]}
        }

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
