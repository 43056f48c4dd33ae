"""What a run records beside ``log.jsonl``: its metrics and TensorBoard events.

``RUN/metrics.jsonl`` holds one line per metric pass, ``{"step": int, "seconds": float (time of
the pass), "values": {"fid": ..., ...}}``, truncated on resume like the log, so that a resumed
run's file equals a straight run's. ``RUN/checkpoints/best.pt`` holds the task state of the step
whose ``best_by`` metric is best so far; it is not one of the rotated ``step-*.pt`` files.
TensorBoard's event files (``tensorboard --logdir runs/``) lie in ``RUN/`` itself: every logged
scalar, each sample grid and each metric, from values the harness already has on the host.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError
from posterforge.jsonl import json_objects

if TYPE_CHECKING:
    import numpy as np

# metrics where more is better; every other one (fid, kid, cycle error, ...) is minimised
HIGHER_IS_BETTER = frozenset({"precision", "recall", "label_consistency"})
BEST_FILE = "best.pt"


def best_path(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / BEST_FILE


def is_better(name: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of metric ``name`` beats ``best`` (None: nothing yet; NaN never wins)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best if name in HIGHER_IS_BETTER else value < best


def new_best(
    name: str, step: int, values: Mapping[str, float], best: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The new ``{"step", "name", "value"}`` when ``values[name]`` beats ``best``, else None
    (``name`` "": no best is tracked); a name the task does not compute is one line."""
    if not name:
        return None
    if name not in values:
        have = ", ".join(values) or "none"
        raise PosterforgeError(
            f"train.best_by = {name!r}: no such metric (this family has: {have})"
        )
    if not is_better(name, values[name], best["value"] if best else None):
        return None
    return {"step": step, "name": name, "value": values[name]}


def check_metrics(task: Any, data: Any, eval_every: int, best_by: str) -> Any:
    """The held-out data for the metric pass (None when ``eval_every`` is 0); a task that declares
    no metric, or a stream without a held-out split, is one line before any step."""
    if best_by and not eval_every:
        raise PosterforgeError(
            f"train.best_by = {best_by!r} needs metrics: set train.eval_every above 0"
        )
    if not eval_every:
        return None
    if not callable(getattr(task, "metrics", None)):
        raise PosterforgeError(
            f"train.eval_every = {eval_every}: this family declares no metric (set it to 0)"
        )
    held_out = getattr(data, "held_out", None)
    if not callable(held_out):
        raise PosterforgeError(
            f"train.eval_every = {eval_every}: this family's data keeps no held-out images "
            "for its metrics (set it to 0)"
        )
    found = held_out()
    if found is None:
        raise PosterforgeError(
            f"train.eval_every = {eval_every}: no images are held out for the metrics: set "
            "eval_images (e.g. --set eval_images=10)"
        )
    return found


def append_metrics(run_dir: Path, step: int, seconds: float, values: Mapping[str, float]) -> None:
    line = json.dumps({"step": step, "seconds": round(seconds, 6), "values": dict(values)})
    with open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The lines of ``RUN/metrics.jsonl`` (a torn last line, from a kill, left out)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return json_objects(path.read_text(encoding="utf-8"))


class Events:
    """TensorBoard event files in the run folder; a resumed run drops the events after its
    checkpoint (``purge_step``), as the log does. Opened on first use (imports tensorboard).

    Written in this thread, not through ``SummaryWriter``'s writer thread: on a full disk that
    thread died with a traceback and the run ended on a bare "No space left on device". Here
    the write fails where it is made and :class:`OSError` names the event file, like any other
    file the run writes. The records are TensorBoard's own (its protos, record framing and
    torch's summary builders); only the thread is ours."""

    def __init__(self, run_dir: Path, purge_step: int | None):
        self.run_dir, self.purge_step = Path(run_dir), purge_step
        self._file: Any = None
        self._records: Any = None
        self.path: Path | None = None

    def _event(self, **fields: Any) -> None:
        import time

        from tensorboard.compat.proto.event_pb2 import Event

        if self._records is None:
            self._open()
        event = Event(wall_time=time.time(), **fields)
        try:
            self._records.write(event.SerializeToString())
            self._records.flush()
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(self.path)) from None

    def _open(self) -> None:
        import os
        import socket
        import time

        from tensorboard.compat.proto.event_pb2 import SessionLog
        from tensorboard.summary.writer.record_writer import RecordWriter

        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.0"
        self.path = self.run_dir / name
        self._file = open(self.path, "ab")  # noqa: SIM115 (closed in close())
        self._records = RecordWriter(self._file)
        self._event(file_version="brain.Event:2")
        if self.purge_step is not None:  # what TensorBoard reads as "drop what came after"
            self._event(step=self.purge_step, session_log=SessionLog(status=SessionLog.START))

    def scalars(self, prefix: str, step: int, values: Mapping[str, float]) -> None:
        from torch.utils.tensorboard.summary import scalar

        for k, v in values.items():
            self._event(step=step, summary=scalar(f"{prefix}/{k}", float(v)))

    def image(self, tag: str, step: int, rgb: np.ndarray) -> None:
        """``rgb``: ``(H, W, 3)`` uint8, already on the host (the PNG's pixels)."""
        from torch.utils.tensorboard.summary import image

        self._event(step=step, summary=image(tag, rgb, dataformats="HWC"))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._records = None
