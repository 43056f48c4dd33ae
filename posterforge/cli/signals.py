"""Ctrl-C, SIGTERM/SIGHUP and closed pipes at the CLI edge, the same for every command that streams
records."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, NoReturn

from posterforge.cli.exits import EXIT_INTERRUPTED


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


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``timeout``, Slurm, ``docker stop``, systemd, a closed terminal), taken
    like the first Ctrl-C: the work in flight lands, the resume line is printed, and the exit
    code is 128 + the signal's number (143 for SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(interrupt: BaseException) -> int:
    """130 for Ctrl-C, 128 + N for signal N taken as one."""
    return 128 + interrupt.signum if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


_TERMINATING = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def take_terminations() -> None:
    """From now on SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt) in the main
    thread, as SIGINT raises KeyboardInterrupt, so every command's Ctrl-C path serves them too."""
    for sig in _TERMINATING:
        with suppress(ValueError, OSError):  # not the main thread: leave them alone
            signal.signal(sig, _raise_terminated)


class HoldSigint:
    """Ctrl-C (and SIGTERM, SIGHUP) raises at once, except while a record is being reported:
    then it is raised right after that record, so each line on stdout is whole."""

    def __enter__(self) -> HoldSigint:
        self.holding = False
        self.pending: KeyboardInterrupt | None = None
        self.previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, *_TERMINATING):
            with suppress(ValueError):  # not the main thread (an embedding application): leave it
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        interrupt = KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)
        if self.holding:
            self.pending = self.pending or interrupt
        else:
            raise interrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending is not None:
            pending, self.pending = self.pending, None
            raise pending


def stop(records: Iterator[Any]) -> None:
    """Close the pipeline: nothing new starts, what is in flight finishes (a second Ctrl-C
    stops waiting)."""
    close = getattr(records, "close", None)
    if close is not None:
        with suppress(KeyboardInterrupt):
            close()
