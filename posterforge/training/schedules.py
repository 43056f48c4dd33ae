"""Scalar schedules for training: learning rates, loss weights, gradient-clipping norms.

The CycleGAN recipe keeps a value constant, then decays it linearly to an end value; the reference
work also started cycle/identity weights and clipping high and lowered them later. One small
frozen dataclass covers both, and it reads from a TOML recipe as a table or a plain number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Schedule:
    """``start`` until step ``decay_start``; then linear to ``end`` over ``decay_steps`` steps;
    then ``end``. A plain number is a constant schedule.

    >>> s = Schedule(10.0, end=5.0, decay_start=100, decay_steps=50)
    >>> [s(0), s(100), s(125), s(150), s(1000)]
    [10.0, 10.0, 7.5, 5.0, 5.0]
    """

    start: float
    end: float | None = None
    decay_start: int = 0
    decay_steps: int = 0

    def __call__(self, step: int) -> float:
        end = self.start if self.end is None else self.end
        if step < self.decay_start:
            return self.start
        if self.decay_steps <= 0:
            return end
        t = min(1.0, (step - self.decay_start) / self.decay_steps)
        return self.start + (end - self.start) * t

    @classmethod
    def parse(cls, value: Any) -> Schedule:
        """From a recipe: ``2e-4`` or ``{start = 10, end = 5, decay_start = 1000, ...}``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int | float):
            return cls(float(value))
        if isinstance(value, dict):
            unknown = set(value) - {"start", "end", "decay_start", "decay_steps"}
            if unknown or "start" not in value:
                raise ValueError(
                    f"bad schedule {value!r}: keys start, end, decay_start, decay_steps"
                )
            return cls(
                float(value["start"]),
                None if value.get("end") is None else float(value["end"]),
                int(value.get("decay_start", 0)),
                int(value.get("decay_steps", 0)),
            )
        raise ValueError(f"bad schedule {value!r}: a number or a table")


def unreached(model: dict[str, Any], max_steps: int) -> list[str]:
    """Notes for the schedules of a recipe's ``[model]`` table that a run of ``max_steps`` ends
    before they start to change (a learning rate that never decays, say).

    >>> unreached({"lr": {"start": 2e-4, "end": 0.0, "decay_start": 1000}}, 500)
    ['--max-steps 500 ends before lr starts to change (at step 1000): it stays 0.0002 throughout']
    """
    notes = []
    for key, value in model.items():
        if not isinstance(value, dict) or "decay_start" not in value:
            continue
        try:
            s = Schedule.parse(value)
        except (TypeError, ValueError):
            continue  # the family reports a bad table itself
        if s.end is not None and s.end != s.start and s.decay_start >= max_steps:
            notes.append(
                f"--max-steps {max_steps} ends before {key} starts to change (at step "
                f"{s.decay_start}): it stays {s.start:g} throughout"
            )
    return notes
