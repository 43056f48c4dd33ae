"""Stopping a run cleanly: the first Ctrl-C, SIGTERM or SIGHUP asks the loop to stop after the
step in progress (a step cut in half could not be checkpointed); the loop then saves a checkpoint
of that step and raises :class:`TrainingInterrupted`. A second signal stops at once."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

STOP_SIGNALS = tuple(
    s
    for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
    if s is not None
)


class TrainingInterrupted(Exception):
    """A signal stopped a run after a step; a checkpoint of that step is on disk. ``signum`` is
    the signal (the command exits with 128 + signum, as a shell reports a process it killed)."""

    def __init__(self, run_dir: Path, step: int, max_steps: int, signum: int = signal.SIGINT):
        super().__init__(f"interrupted at step {step} of {max_steps}")
        self.run_dir, self.step, self.max_steps = run_dir, step, max_steps
        self.signum = int(signum)


class StopAfterStep:
    """Catches the stop signals while a loop runs. Off under DDP (every rank would have to agree
    on the step) and outside the main thread, where the defaults stay."""

    def __init__(self, enabled: bool = True):
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}
        if enabled and threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self.previous[s] = signal.signal(s, self._handle)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def close(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
