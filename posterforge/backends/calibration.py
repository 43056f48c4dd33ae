"""The calibration: which path is fastest for one model architecture, shape class, precision and
device on this machine, timed once and kept in ``$POSTERFORGE_HOME/calibration.json``.

A decision is keyed by the machine (the CPU's model name and flags from ``/proc/cpuinfo``, the
torch, OpenVINO and posterforge versions: a new CPU or library is a new machine) and by what it is
about. Once written it is never re-timed, so a killed and resumed job takes the same path and
writes the same bytes; two runs that calibrate at once keep the first one written.

Because a decision is kept for good, it is timed so that noise on a shared machine cannot make
it: the candidates run interleaved (the order rotating every round) for at least
:data:`MIN_ROUNDS` rounds, each is ranked by the median of its rounds (one slow round, a burst
of load elsewhere, moves no median), and while the fastest two are within :data:`MARGIN` of each
other or either's rounds spread wider than that (median absolute deviation over the median),
more rounds run, up to :data:`MAX_ROUNDS` or :data:`BUDGET_SECONDS` of timing. The entry keeps
every round's seconds, the medians and the number of rounds, so the device line and
``posterforge warmup`` can say why a path was chosen.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from posterforge.backends import PATHS, TORCH

FILE = "calibration.json"
# a path other than torch wins only when it is this much faster: timings on a shared machine
# are noisy, and torch is what every earlier output was made with
MARGIN = 0.05
MIN_ROUNDS = 3  # the fewest timed rounds: a median needs three to outvote one outlier
MAX_ROUNDS = 9  # a close or noisy race stops here and keeps its medians' winner
BUDGET_SECONDS = 120.0  # no round beyond the minimum starts after this much timing


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
    """The decision cached for ``key``: ``{"path", "date", "seconds", "rounds", "timings"}``
    (entries of earlier versions lack the last two), or None."""
    entry = _read().get(key)
    if isinstance(entry, dict) and entry.get("path") in PATHS:
        return entry
    return None


def remember(key: str, path: str, times: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Keep the decision for ``key`` (``path``, chosen from the seconds of every round in
    ``times``) unless another run kept one first; returns the one kept."""
    entry = {
        "path": path,
        "date": time.strftime("%Y-%m-%d"),
        "seconds": {k: round(v, 4) for k, v in medians(times).items()},
        "rounds": max((len(v) for v in times.values()), default=0),
        "timings": {k: [round(t, 4) for t in v] for k, v in times.items()},
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


def fastest(
    candidates: Mapping[str, Callable[[], object]],
    *,
    clock: Callable[[], float] = time.perf_counter,
    min_rounds: int = MIN_ROUNDS,
    max_rounds: int = MAX_ROUNDS,
    budget: float = BUDGET_SECONDS,
) -> dict[str, list[float]]:
    """The seconds of each round of each candidate, after one untimed call each that pays for
    conversion, compilation and first-touch memory. Interleaved, the first of them rotating
    every round, so that a burst of load elsewhere hits all of them alike; rounds beyond
    ``min_rounds`` run while the race is not :func:`settled`, up to ``max_rounds`` and while
    less than ``budget`` seconds went on timing. ``clock``: the timer (tests give a fake)."""
    for run in candidates.values():
        run()
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    start = clock()
    for r in range(max_rounds):
        if r >= min_rounds and (settled(times) or clock() - start >= budget):
            break
        for name in names[r % len(names) :] + names[: r % len(names)]:
            began = clock()
            candidates[name]()
            times[name].append(clock() - began)
    return times


def medians(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Each candidate's median round: what ranks them."""
    return {name: statistics.median(t) for name, t in times.items() if t}


def spread(rounds: Sequence[float]) -> float:
    """How far the rounds scatter, relative: their median absolute deviation over their median
    (0 for one round; one outlier among three or more moves it little)."""
    mid = statistics.median(rounds)
    if mid <= 0:
        return 0.0
    return statistics.median(abs(t - mid) for t in rounds) / mid


def settled(times: Mapping[str, Sequence[float]], margin: float = MARGIN) -> bool:
    """Whether more rounds could not change the winner: the fastest two medians are more than
    ``margin`` apart and neither's rounds spread wider than ``margin``."""
    seconds = medians(times)
    if len(seconds) < 2:
        return True
    best, second = sorted(seconds, key=lambda k: seconds[k])[:2]
    if seconds[best] > seconds[second] * (1 - margin):
        return False  # a close race
    return spread(times[best]) <= margin and spread(times[second]) <= margin


def winner(seconds: Mapping[str, float]) -> str:
    """The fastest path (by its median), torch unless another beats it by :data:`MARGIN`."""
    best = min(seconds, key=lambda k: seconds[k])
    if TORCH in seconds and seconds[best] > seconds[TORCH] * (1 - MARGIN):
        return TORCH
    return best


def explain(entry: Mapping[str, Any]) -> str:
    """Why ``entry``'s path was chosen, in one line: ``openvino 0.287 s against torch 0.450 s,
    torch-plain 0.465 s (median of 3 rounds, 2026-12-02)``."""
    seconds = entry.get("seconds") or {}
    path = entry.get("path", "?")
    others = ", ".join(f"{k} {v:.3f} s" for k, v in sorted(seconds.items(), key=lambda kv: kv[1])
                       if k != path)  # fmt: skip
    mine = f"{path} {seconds[path]:.3f} s" if path in seconds else str(path)
    rounds = entry.get("rounds")
    how = f"median of {rounds} rounds" if rounds else "best of 2 rounds"  # an earlier version's
    return f"{mine} against {others or 'nothing'} ({how}, {entry.get('date', '?')})"


def speedup(entry: Mapping[str, Any]) -> str:
    """``1.57x torch``: the chosen path against torch, for the device line; empty for torch."""
    seconds = entry.get("seconds") or {}
    path = entry.get("path")
    if path == TORCH or TORCH not in seconds or not seconds.get(path):
        return ""
    return f"{seconds[TORCH] / seconds[path]:.2f}x torch"


def _read() -> dict[str, Any]:
    return read_entries(cache_path())


def read_entries(path: Path) -> dict[str, Any]:
    """A JSON cache of decisions in the home; missing, unreadable or not an object: none."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
