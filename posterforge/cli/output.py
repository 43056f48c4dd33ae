"""How the CLI prints: tables for people, JSON for pipes, a progress line on stderr. Rich is
imported only when used."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(soft_wrap=False).print(table)


class ProgressLine:
    """A one-line progress display on a terminal stream (stderr): count, bar, rate and ETA.

    It never writes to stdout and never captures it: lines go out through :class:`Lines`, which
    clears the bar first when the line lands on the same terminal and draws it again after, so
    stdout carries exactly its lines whether it is a terminal, a file or a pipe. ``noun`` names
    the count (``step 9/200``); ``base``: the count and time the rate is measured from (training
    moves it past its first step, whose start-up would skew the ETA).
    """

    def __init__(
        self,
        label: str,
        total: int,
        stream: TextIO | None = None,
        every: float = 0.1,
        unit: str = "img",
        noun: str = "",
    ):
        self.label, self.total, self.every, self.unit = label, total, every, unit
        self.noun = noun
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.start, self.drawn_at = 0, time.monotonic(), 0.0
        self.base = (0, self.start)
        self.shown = False

    def advance(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self.drawn_at >= self.every or self.done >= self.total:
            self.draw()

    def draw(self) -> None:
        self.drawn_at = time.monotonic()
        self.stream.write("\r" + self.text(_columns(self.stream) - 1) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def text(self, width: int = 79) -> str:
        base_done, base_time = self.base
        secs = time.monotonic() - max(base_time, self.start)
        rate = (self.done - base_done) / secs if secs > 0 and self.done > base_done else 0.0
        eta = "--:--"
        if rate > 0 and self.total >= self.done:
            m, s = divmod(round((self.total - self.done) / rate), 60)
            eta = f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
        count = f"{self.noun} {self.done}" if self.noun else str(self.done)
        tail = f" {count}/{self.total} {rate:.2f} {self.unit}/s ETA {eta}"
        room = min(40, width - len(self.label) - len(tail) - 3)
        if room < 5:
            return (self.label + tail)[:width]
        filled = room * self.done // max(self.total, 1)
        return f"{self.label} [{'#' * filled}{'.' * (room - filled)}]{tail}"


def _columns(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    return max(20, columns) if columns > 0 else 80  # a new pty may report 0 columns


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


class Lines:
    """Whole lines to stdout (results, for pipes) and stderr (for people), around an optional
    :class:`ProgressLine` on stderr. Each line is flushed at once."""

    def __init__(self, progress: ProgressLine | None = None):
        self.progress = progress

    def out(self, line: str) -> None:
        self._write(sys.stdout, line)

    def err(self, line: str) -> None:
        self._write(sys.stderr, line)

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance()

    def advance_by(self, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(n)

    def close(self) -> None:
        """Take the progress line off the terminal (the summary replaces it)."""
        if self.progress is not None:
            self.progress.clear()
            self.progress = None

    def _write(self, stream: TextIO, line: str) -> None:
        bar = self.progress
        # the bar shares the terminal with this line: take it away, write, draw it again
        around = bar is not None and bar.shown and (stream is bar.stream or _isatty(stream))
        if around:
            bar.clear()
        stream.write(line + "\n")
        stream.flush()
        if around:
            bar.draw()


class TrainBar:
    """Training progress on a terminal (stderr): the one-line bar with the latest losses, the
    steps done and steps/s (the ETA from the second step on: the first carries the start-up),
    and notes printed around it; at the end, one line with the step reached. A
    :class:`~posterforge.training.progress.TrainProgress`."""

    def __init__(self, stream: TextIO | None = None):
        self.bar = ProgressLine("train", 0, stream, unit="steps", noun="step")
        self.losses = ""
        self.metric = ""
        self.first = True

    def start(self, step: int, total: int) -> None:
        self.bar.total, self.bar.done, self.bar.start = total, step, time.monotonic()
        self.bar.base, self.first = (step, self.bar.start), True

    def on_step(self, step: int, total: int, logs: Any) -> None:
        from posterforge.training.progress import loss_text

        if self.first:  # the rate and ETA count from here
            self.bar.base, self.first = (step, time.monotonic()), False
        if logs is not None:
            self.losses = loss_text(logs)
        self.bar.label = f"train {self.losses}".rstrip()
        self.bar.advance(step - self.bar.done)

    def notify(self, line: str) -> None:
        Lines(self.bar).err(line)

    def on_metrics(self, step: int, values: Any, seconds: float) -> None:
        from posterforge.training.progress import metric_text

        self.metric = metric_text(step, values, seconds)
        self.notify(f"train: metrics {self.metric}")

    def close(self) -> None:
        self.bar.clear()
        metric = f" | {self.metric}" if self.metric else ""
        line = f"train: step {self.bar.done}/{self.bar.total} {self.losses}{metric}"
        print(line, file=self.bar.stream)


def train_progress() -> Any:
    """The bar on a terminal, plain lines elsewhere (nohup, a log file): a ``TrainProgress``."""
    from posterforge.training.progress import PlainProgress

    return TrainBar() if sys.stderr.isatty() else PlainProgress()


PLAIN_EVERY_S = 30.0  # off a terminal (nohup, a log file): one count line at most this often


@contextmanager
def count_progress(
    label: str, every_s: float = PLAIN_EVERY_S, unit: str = "images"
) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback: a :class:`ProgressLine` on a terminal (taken off
    when the block ends); elsewhere a plain ``eval: 120/2,000 images`` line, the first at once,
    then at most one each ``every_s`` seconds, and the last."""
    if not sys.stderr.isatty():
        last = -float("inf")

        def plain(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= every_s or done >= total:
                last = now
                print(f"{label}: {done:,}/{total:,} {unit}", file=sys.stderr, flush=True)

        yield plain
        return
    bar = ProgressLine(label, 1)

    def progress(done: int, total: int) -> None:
        bar.total, bar.done = total, done - 1
        bar.advance()

    try:
        yield progress
    finally:
        bar.clear()
