"""How a model family offers training to the CLI: a ``Trainer spec`` registered by a plugin.

The core's ``posterforge train translator|generator`` commands collect a :class:`TrainRequest`
(data folders, recipe, device, seed, initial weights) and hand it to the family's ``build``, which
returns the :class:`~posterforge.training.task.TrainingTask` and the batch stream that the generic
harness then drives. Registering this costs no torch import: ``build`` imports what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from posterforge.training.harness import BatchStream
    from posterforge.training.task import TrainingTask
    from posterforge.weights import Weights


@dataclass
class TrainRequest:
    """What the user asked for. ``data`` holds the family's inputs by name, e.g.
    ``{"a": Path, "b": Path}`` for unpaired translation; ``recipe`` is the merged TOML recipe
    (preset, then ``--set key=value`` overrides)."""

    data: dict[str, Path]
    recipe: dict[str, Any]
    device: str = "cpu"
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    init_from: Weights | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainerSpec:
    name: str  # e.g. "cyclegan"
    kind: str  # "translator" or "generator": which `train` sub-command offers it
    description: str
    # the function, or "module:function", imported only when training starts (so registering
    # a trainer never imports torch)
    build: Callable[[TrainRequest], tuple[TrainingTask, BatchStream]] | str

    def make(self, request: TrainRequest) -> tuple[TrainingTask, BatchStream]:
        """The family's task and batch stream for ``request``."""
        build = self.build
        if isinstance(build, str):
            import importlib

            module, _, attr = build.partition(":")
            build = getattr(importlib.import_module(module), attr)
        return build(request)

R = TypeVar("R")


def recipe_from_dict(cls: type[R], recipe: dict[str, Any] | None, family: str) -> R:
    """A family's recipe dataclass from the ``[model]`` table; unknown keys (typos) are refused
    with the list of known ones, before any training starts."""
    recipe = dict(recipe or {})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(recipe) - known)
    if unknown:
        have = ", ".join(sorted(known))
        raise ValueError(f"unknown {family} recipe keys: {', '.join(unknown)} (known: {have})")
    return cls(**recipe)
