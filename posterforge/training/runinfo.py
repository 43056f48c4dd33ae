"""What a run folder says about its run, read without torch: for ``posterforge runs`` (a table of
the runs under a folder) and ``posterforge report`` (one HTML page of one or more runs).

A folder is a run when it holds ``config.json`` (the harness's) or ``request.json`` (what was
asked, written before the first step). Its status is ``running`` while a training holds its lock
(:mod:`.runlock`), ``finished`` once its exported model is of its last step, else
``interrupted``. Its best step is found again from ``metrics.jsonl`` by its ``best_by`` metric,
the rule the harness keeps ``checkpoints/best.pt`` by.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posterforge.errors import PosterforgeError
from posterforge.jsonl import json_objects
from posterforge.training.checkpoints import list_checkpoints
from posterforge.training.monitor import best_path, new_best, read_metrics

RUNNING, FINISHED, INTERRUPTED = "running", "finished", "interrupted"
_SAMPLE = re.compile(r"step-(\d+)\.png")
MAX_DEPTH = 3  # how deep ``find_runs`` looks under its folder


def is_run(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("config.json", "request.json"))


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise PosterforgeError(f"{path}: not readable as JSON ({e})") from None
    if not isinstance(found, dict):
        raise PosterforgeError(f"{path}: not a JSON object")
    return found


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The object lines of a JSONL file (a torn line, from a kill, left out)."""
    if not path.is_file():
        return []
    return json_objects(path.read_text(encoding="utf-8", errors="replace"), "step", int)


@dataclass
class RunInfo:
    """One run folder, as read now."""

    path: Path
    kind: str
    family: str
    step: int
    max_steps: int | None
    status: str
    best: dict[str, Any] | None  # {"name", "step", "value", "file": path or None}
    last_checkpoint: Path | None
    request: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples: list[tuple[int, Path]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def best_text(self) -> str:
        b = self.best
        return f"{b['name']}={b['value']:.4g} (step {b['step']})" if b else ""

    def latest_metrics(self) -> dict[str, Any] | None:
        return self.metrics[-1] if self.metrics else None

    def as_dict(self) -> dict[str, Any]:
        """What ``runs --json`` prints for the run."""
        best = dict(self.best) if self.best else None
        if best is not None and best.get("file") is not None:
            best["file"] = str(best["file"])
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "family": self.family,
            "step": self.step,
            "max_steps": self.max_steps,
            "status": self.status,
            "best": best,
            "latest_metrics": self.latest_metrics(),
            "last_checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
        }


def read_run(path: str | os.PathLike[str]) -> RunInfo:
    """The run in ``path``; a folder that is not a run is one line."""
    run = Path(path)
    if not run.is_dir():
        raise PosterforgeError(f"{run}: no such folder")
    if not is_run(run):
        raise PosterforgeError(
            f"{run}: not a run folder (it holds no config.json or request.json of a training)"
        )
    request, config = _json(run / "request.json"), _json(run / "config.json")
    log, metrics = read_jsonl(run / "log.jsonl"), read_metrics(run)
    checkpoints = list_checkpoints(run)
    provenance = _provenance(run)
    step = max([0] + [int(x["step"]) for x in log] + [s for s, _ in checkpoints])
    max_steps = _max_steps(config, request)
    return RunInfo(
        path=run,
        kind=str(request.get("kind", "")),
        family=str(request.get("arch", "")),
        step=step,
        max_steps=max_steps,
        status=_status(run, config, provenance, max_steps),
        best=_best(run, str(config.get("best_by", "")), metrics),
        last_checkpoint=checkpoints[-1][1] if checkpoints else None,
        request=request,
        config=config,
        log=log,
        metrics=metrics,
        samples=_samples(run),
        provenance=provenance,
    )


def _max_steps(config: dict[str, Any], request: dict[str, Any]) -> int | None:
    value = config.get("max_steps")
    if value is None:
        value = request.get("recipe", {}).get("train", {}).get("max_steps")
    return value if isinstance(value, int) else None


def _provenance(run: Path) -> dict[str, Any]:
    """The exported model's provenance (its steps say the run got there), or {}."""
    model = run / "model.safetensors"
    if not model.is_file():
        return {}
    from posterforge.errors import WeightsError
    from posterforge.weights import read_header

    try:
        found = read_header(model).get("provenance", {})
    except WeightsError:
        return {}
    return found if isinstance(found, dict) else {}


def _status(
    run: Path, config: dict[str, Any], provenance: dict[str, Any], max_steps: int | None
) -> str:
    from posterforge.atomic import held_by_other

    if held_by_other(run / "training"):  # the lock runlock.holding takes
        return RUNNING
    if max_steps is None:
        return INTERRUPTED
    steps = provenance.get("steps")
    if isinstance(steps, int):  # the exported model says how far the run got
        return FINISHED if steps >= max_steps else INTERRUPTED
    # a family whose header has no steps: the last checkpoint, then the export (or none asked)
    last = list_checkpoints(run)
    exported = (run / "model.safetensors").is_file() or config.get("export") is False
    return FINISHED if last and last[-1][0] >= max_steps and exported else INTERRUPTED


def _best(run: Path, best_by: str, metrics: list[dict[str, Any]]) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for m in metrics:
        values = m.get("values", {})
        if best_by not in values:
            continue
        best = new_best(best_by, int(m["step"]), values, best) or best
    if best is None:
        return None
    file = best_path(run)
    return {**best, "file": file if file.is_file() else None}


def _samples(run: Path) -> list[tuple[int, Path]]:
    folder = run / "samples"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _SAMPLE.fullmatch(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def find_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """The run folders under ``folder`` (itself, when it is one), ``MAX_DEPTH`` deep, by path;
    a run's own sub-folders are not searched, links not followed."""
    root = Path(folder)
    if not root.is_dir():
        raise PosterforgeError(f"{root}: no such folder")
    if is_run(root):
        return [root]
    found: list[Path] = []
    for here, dirs, _files in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        keep = []
        for d in sorted(dirs):
            path = Path(here) / d
            if path.is_symlink() or d.startswith("."):
                continue
            if is_run(path):
                found.append(path)
            elif depth + 1 < MAX_DEPTH:
                keep.append(d)
        dirs[:] = keep
    return sorted(found)


def step_times(info: RunInfo) -> list[tuple[int, float]]:
    """Seconds per training step between consecutive log lines (at the later line's step), the
    metric passes in between left out (they are timed apart, in ``metrics.jsonl``)."""
    metric_s = {int(m["step"]): float(m.get("seconds", 0.0)) for m in info.metrics}
    out = []
    for a, b in zip(info.log, info.log[1:], strict=False):
        s0, s1 = int(a["step"]), int(b["step"])
        t0, t1 = a.get("time"), b.get("time")
        if s1 <= s0 or not isinstance(t0, int | float) or not isinstance(t1, int | float):
            continue
        spent = t1 - t0 - sum(v for s, v in metric_s.items() if s0 < s <= s1)
        if spent > 0:
            out.append((s1, spent / (s1 - s0)))
    return out


def timing(info: RunInfo) -> dict[str, Any]:
    """Typical seconds per step (the median of :func:`step_times`: a resume's pause between two
    lines does not count), steps and images per second, and the metric passes' time."""
    times = [t for _s, t in step_times(info)]
    per_step = statistics.median(times) if times else None
    batch = info.request.get("recipe", {}).get("model", {}).get("batch_size")
    passes = [float(m.get("seconds", 0.0)) for m in info.metrics]
    return {
        "seconds_per_step": per_step,
        "steps_per_second": 1.0 / per_step if per_step else None,
        "images_per_second": batch / per_step if per_step and isinstance(batch, int) else None,
        "metric_passes": len(passes),
        "metric_seconds_total": sum(passes),
        "metric_seconds_each": statistics.median(passes) if passes else None,
    }
