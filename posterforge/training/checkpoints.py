"""A run's checkpoint files: ``RUN/checkpoints/step-NNNNNNNN.pt``, written whole or not at all and
read with ``weights_only=True`` only. Listing them imports no torch (``train export`` checks a step
before anything loads)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from posterforge.atomic import atomic_write
from posterforge.errors import PosterforgeError

log = logging.getLogger(__name__)

_CKPT_RE = re.compile(r"^step-(\d{8,})\.pt$")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:08d}.pt"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, rename: whole or not at all."""
    import torch

    with atomic_write(path) as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:  # torch's zip writer fails to close after a failed write:
            cause = _os_error(e)  # the write's OSError (a full disk) is what to say
            if cause is None:
                raise
            raise cause from None
    _fsync_dir(path.parent)


def _os_error(e: BaseException) -> OSError | None:
    """The OSError that ``e`` was raised in handling, if any."""
    seen: BaseException | None = e
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ or seen.__context__
    return seen


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no arbitrary unpickling); a file that is
    not one, or that a hostile pickle replaced, is one line naming it (never torch's advice to
    load it unsafely)."""
    import warnings

    import torch

    try:  # torch warns about a pickle protocol it did not write: a raw warning, not our line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PosterforgeError(f"{path}: {_unreadable(e)}") from None
    if not isinstance(ckpt, dict) or "step" not in ckpt:
        raise PosterforgeError(f"{path}: not a training checkpoint (no step in it)")
    return ckpt


def _unreadable(e: Exception) -> str:
    import pickle

    if isinstance(e, pickle.UnpicklingError):  # torch's text would advise weights_only=False
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found[1]})" if found else ""
        return f"refused: it holds Python objects other than tensors{what}, so it was not loaded"
    first = (str(e).strip().splitlines() or [""])[0][:200]
    if "weights_only" in first:
        first = ""
    return f"not a readable checkpoint ({type(e).__name__}{': ' if first else ''}{first})"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def last_step(run_dir: Path) -> int | None:
    found = list_checkpoints(run_dir)
    return found[-1][0] if found else None


def latest_checkpoint(
    run_dir: Path, notify: Callable[[str], None] | None = None
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; each one skipped is a warning line to ``notify`` (default:
    the log), and after a skip another says which one is used (or that none is left)."""
    say = notify or log.warning
    skipped = False
    for _step, path in reversed(list_checkpoints(run_dir)):
        try:
            ckpt = load_checkpoint(path)
        except PosterforgeError as e:
            say(f"posterforge: warning: skipping checkpoint {e}")
            skipped = True
            continue
        if skipped:
            say(f"posterforge: resuming from {path}, the newest checkpoint that loads")
        return path, ckpt
    if skipped:
        say("posterforge: no checkpoint loads: the run starts again from step 0")
    return None
