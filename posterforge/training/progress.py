"""How a run reports: a small protocol the harness calls, and the plain-line reporter for logs.

The harness knows no terminal: it calls ``start``, ``on_step`` after every step (``logs`` holds
the values of the steps it logs, else None), ``notify`` for a line a person should read, and
``close``. :class:`PlainProgress` writes plain lines to stderr (nohup, a log file, a Python
caller); the CLI brings the one-line bar for a terminal (``posterforge.cli.output``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Protocol, TextIO


class TrainProgress(Protocol):
    """What the harness and the run tell whoever watches a training run."""

    def start(self, step: int, total: int) -> None:
        """The loop starts at ``step`` (0, or where a resume picks up) of ``total``."""

    def on_step(self, step: int, total: int, logs: Mapping[str, float] | None) -> None:
        """``step`` of ``total`` is done; ``logs``: its logged values (None when not logged)."""

    def notify(self, line: str) -> None:
        """A line for a person (a note, a warning), not a result."""

    def close(self) -> None:
        """The loop has ended (finished, interrupted or failed)."""


def loss_text(logs: Mapping[str, float]) -> str:
    """``loss=0.1234 lr=0.0002``: the logged values as the progress shows them."""
    return " ".join(f"{k}={float(v):.4g}" for k, v in logs.items())


class PlainProgress:
    """A plain line per logged step, at most one every ``every_s`` seconds (and the last one),
    with the step, rate, ETA and losses; notes as they come. No carriage returns."""

    def __init__(self, every_s: float = 30.0, stream: TextIO | None = None):
        self.every_s = every_s
        self.stream = stream
        self.start_step, self.started, self.last = 0, time.monotonic(), -float("inf")
        self.losses = ""

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def start(self, step: int, total: int) -> None:
        self.start_step, self.started, self.last = step, time.monotonic(), -float("inf")

    def on_step(self, step: int, total: int, logs: Mapping[str, float] | None) -> None:
        if logs is None:
            return
        self.losses = loss_text(logs)
        now = time.monotonic()
        if now - self.last < self.every_s and step < total:
            return
        self.last = now
        rate = (step - self.start_step) / max(now - self.started, 1e-9)
        eta = f"{(total - step) / rate / 60:.1f} min" if rate > 0 else "?"
        line = f"train: step {step}/{total} ({rate:.2f} steps/s, ETA {eta}) {self.losses}"
        print(line, file=self._out(), flush=True)

    def notify(self, line: str) -> None:
        print(line, file=self._out(), flush=True)

    def close(self) -> None:
        pass
