"""One training at a time in a run folder: ``RUN/.training.lock`` (an :func:`atomic.claim` lock,
holder inside) held for the whole run, so that a second training started at the same moment is
refused in one line instead of interleaving its log, request and model with the first's. A
killed holder's lock is taken over by the next run (its pid is gone)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from posterforge.atomic import claim, lock_path
from posterforge.errors import PosterforgeError
from posterforge.training.checkpoints import list_checkpoints


@contextmanager
def holding(run_dir: Path, *, new: bool) -> Iterator[None]:
    """Hold the run folder's lock (rank 0 of a ``torchrun`` job only: its ranks share the run).
    ``new``: a new run, refused when another has left checkpoints there while this one started."""
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    target = Path(run_dir) / "training"
    held = claim(target)
    if held is None:
        raise PosterforgeError(
            f"{run_dir}: another training runs in this folder now{_holder(target)}: wait for it "
            "to end, or pass another --out"
        )
    try:
        if new and list_checkpoints(run_dir):  # it ended just before we took the lock
            raise PosterforgeError(
                f"{run_dir} holds a run already: resume it with --resume {run_dir}"
            )
        yield
    finally:
        held.release()


def _holder(target: Path) -> str:
    try:
        fields = lock_path(target).read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return ""
    return f" (pid {fields[1]})" if len(fields) > 1 and fields[1].isdigit() else ""
