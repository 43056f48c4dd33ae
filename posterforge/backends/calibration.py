"""The calibration: which path is fastest for one model architecture, shape class, precision and
device on this machine, timed once and kept in ``$POSTERFORGE_HOME/calibration.json``.

A decision is keyed by the machine (the CPU's model name and flags from ``/proc/cpuinfo``, the
torch, OpenVINO and posterforge versions: a new CPU or library is a new machine) and by what it is
about. Once written it is never re-timed, so a killed and resumed job takes the same path and
writes the same bytes; two runs that calibrate at once keep the first one written.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from posterforge.backends import PATHS, TORCH

FILE = "calibration.json"
# a path other than torch wins only when it is this much faster: timings on a shared machine
# are noisy, and torch is what every earlier output was made with
MARGIN = 0.05


def cache_path() -> Path:
    from posterforge.store import home

    return home() / FILE


def cpu_identity(cpuinfo: str | None = None) -> dict[str, str]:
    """The CPU's model name and flags (``/proc/cpuinfo``, first processor), else the platform's
    processor string: what kernels a library can use here."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = " ".join(sorted(fields.get("flags", fields.get("Features", "")).split()))
    return {"cpu": model, "flags": flags}


def machine_key(cpuinfo: str | None = None) -> str:
    """16 hex digits naming this machine for the calibration: CPU and library versions."""
    import torch

    from posterforge.backends.openvino import version
    from posterforge.version import __version__

    about = {
        **cpu_identity(cpuinfo),
        "torch": torch.__version__,
        "openvino": version(),
        "posterforge": __version__,
    }
    return hashlib.sha256(json.dumps(about, sort_keys=True).encode()).hexdigest()[:16]


def entry_key(arch: str, shape_class: str, precision: str, device: str) -> str:
    return f"{machine_key()} {arch} {shape_class} {precision} {device}"


def lookup(key: str) -> dict[str, Any] | None:
    """The decision cached for ``key``: ``{"path", "date", "seconds"}``, or None."""
    entry = _read().get(key)
    if isinstance(entry, dict) and entry.get("path") in PATHS:
        return entry
    return None


def remember(key: str, path: str, seconds: Mapping[str, float]) -> dict[str, Any]:
    """Keep the decision for ``key`` unless another run kept one first; returns the one kept."""
    entry = {
        "path": path,
        "date": time.strftime("%Y-%m-%d"),
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
    }
    return keep_first(cache_path(), key, entry, lambda kept: kept.get("path") in PATHS)


def keep_first(
    target: Path, key: str, entry: dict[str, Any], valid: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Keep ``entry`` for ``key`` in the JSON cache ``target`` unless another run kept a
    ``valid`` one first; returns the one kept. A read-only home keeps nothing: the decision
    then holds for this run only."""
    from posterforge.atomic import write_text_atomic

    entries = read_entries(target)
    if isinstance(kept := entries.get(key), dict) and valid(kept):
        return kept
    entries[key] = entry
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass
    return entry


def fastest(candidates: Mapping[str, Callable[[], object]], rounds: int = 2) -> dict[str, float]:
    """Seconds per call of each candidate (the best of ``rounds``, after one untimed call that
    pays for conversion, compilation and first-touch memory), interleaved so that a burst of
    load elsewhere hits all of them alike."""
    for run in candidates.values():
        run()
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def winner(seconds: Mapping[str, float]) -> str:
    """The fastest path, torch unless another beats it by :data:`MARGIN`."""
    best = min(seconds, key=lambda k: seconds[k])
    if TORCH in seconds and seconds[best] > seconds[TORCH] * (1 - MARGIN):
        return TORCH
    return best


def _read() -> dict[str, Any]:
    return read_entries(cache_path())


def read_entries(path: Path) -> dict[str, Any]:
    """A JSON cache of decisions in the home; missing, unreadable or not an object: none."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
