"""Ctrl-C and closed pipes at the CLI edge, the same for every command that streams records."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, NoReturn

from posterforge.cli.exits import EXIT_INTERRUPTED  # noqa: F401  (where commands found it)


def closed_pipe() -> NoReturn:
    """The reader of our output went away (``| head -2``): end quietly the way shell tools do,
    killed by SIGPIPE (the shell shows status 141); the outputs written so far are whole."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing is flushed into the closed pipe later
    except (OSError, ValueError):
        pass
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + 13)


class HoldSigint:
    """Ctrl-C raises KeyboardInterrupt at once, except while a record is being reported: then it
    is raised right after that record, so each line on stdout is whole."""

    def __enter__(self) -> HoldSigint:
        self.holding = self.pending = False
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (an embedding application): leave it alone
            self.previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def stop(records: Iterator[Any]) -> None:
    """Close the pipeline: nothing new starts, what is in flight finishes (a second Ctrl-C
    stops waiting)."""
    close = getattr(records, "close", None)
    if close is not None:
        with suppress(KeyboardInterrupt):
            close()
