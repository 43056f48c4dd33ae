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

    # optional: ``on_metrics(step, values, seconds)``, the metrics of ``step`` and the time
    # their pass took (apart from training's); the harness calls it when the progress has it

    def close(self) -> None:
        """The loop has ended (finished, interrupted or failed)."""


def metric_text(step: int, values: Mapping[str, float], seconds: float) -> str:
    """``fid=41.2 kid=0.031 (step 500, metrics 3.2 s)``: the latest metrics as progress shows
    them, with the time of their pass (not counted as training time)."""
    shown = " ".join(f"{k}={float(v):.4g}" for k, v in values.items())
    return f"{shown} (step {step}, metrics {seconds:.1f} s)"


def loss_text(logs: Mapping[str, float]) -> str:
    """``loss=0.1234 lr=0.0002``: the logged values as the progress shows them."""
    return " ".join(f"{k}={float(v):.4g}" for k, v in logs.items())


class StepClock:
    """Steps per second and the ETA of a run, from its second step on: the first step of a
    session carries the start-up (the first batch, lazy kernels, caches), so it is timed on its
    own (``first_s``) and left out of the rate."""

    def __init__(self) -> None:
        self.start(0)

    def start(self, step: int) -> None:
        self.started = self.base_time = time.monotonic()
        self.base_step = self.step = step
        self.first_s: float | None = None

    def tick(self, step: int) -> None:
        """``step`` is done (called after every step)."""
        self.step = step
        if self.first_s is None:  # the session's first step: its time, then count from here
            self.base_time = time.monotonic()
            self.first_s, self.base_step = self.base_time - self.started, step

    @property
    def is_first(self) -> bool:
        return self.first_s is not None and self.step == self.base_step

    def rate(self) -> float:
        """Steps per second after the first step (0 until a second one is done)."""
        steps = self.step - self.base_step
        return steps / max(time.monotonic() - self.base_time, 1e-9) if steps > 0 else 0.0

    def eta_s(self, total: int) -> float | None:
        rate = self.rate()
        return (total - self.step) / rate if rate > 0 else None


class PlainProgress:
    """A plain line per logged step (the first step of the run at once, with its time, then
    every ``log_every``), with the step, rate and ETA (both from the second step on) and the
    losses; notes as they come. No carriage returns. ``every_s``: at most one line in so many
    seconds (0, the default: every logged step; the last one always)."""

    def __init__(self, every_s: float = 0.0, stream: TextIO | None = None):
        self.every_s = every_s
        self.stream = stream
        self.clock = StepClock()
        self.last = -float("inf")
        self.losses = ""
        self.metric = ""  # the latest metrics, shown on every line after them

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def start(self, step: int, total: int) -> None:
        self.clock.start(step)
        self.last = -float("inf")

    def on_step(self, step: int, total: int, logs: Mapping[str, float] | None) -> None:
        clock = self.clock
        clock.tick(step)
        if logs is None:
            return
        self.losses = loss_text(logs)
        now = time.monotonic()
        if now - self.last < self.every_s and step < total:
            return
        self.last = now
        if clock.is_first:
            timing = f"first step {clock.first_s:.2f} s, with start-up"
        else:
            eta = clock.eta_s(total)
            timing = f"{clock.rate():.2f} steps/s, ETA {'?' if eta is None else _minutes(eta)}"
        metric = f" | {self.metric}" if self.metric else ""
        line = f"train: step {step}/{total} ({timing}) {self.losses}{metric}".rstrip()
        print(line, file=self._out(), flush=True)

    def notify(self, line: str) -> None:
        print(line, file=self._out(), flush=True)

    def on_metrics(self, step: int, values: Mapping[str, float], seconds: float) -> None:
        self.metric = metric_text(step, values, seconds)
        print(f"train: metrics {self.metric}", file=self._out(), flush=True)

    def close(self) -> None:
        pass


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"
