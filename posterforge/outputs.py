"""Which settings made each output of a folder, so that a re-run skips only what the same
settings made (``OUT/.posterforge-outputs.json``).

A run first *reserves* its planned outputs: an output that exists already must have been made
with this run's settings, else the run is refused before any work (``--overwrite`` replaces it).
Outputs that do not exist yet are recorded under this run's settings at once, so a killed run's
files are known on the next try. An output being replaced with other settings is recorded only
when the run completes: if the run is killed, the record says nothing about it and the next run
refuses it rather than trust it. The record is read and written under a lock, so two runs on one
folder merge their records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from posterforge.atomic import claim, write_text_atomic
from posterforge.errors import PosterforgeError

log = logging.getLogger(__name__)

RECORD = ".posterforge-outputs.json"
SHOWN = 3  # conflicting files named in the error


def fingerprint(settings: Mapping[str, Any]) -> str:
    text = json.dumps(dict(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reserve(
    root: Path,
    settings: Mapping[str, Any],
    dests: Sequence[Path],
    *,
    overwrite: bool,
    shown: Mapping[str, tuple[str, str]] | None = None,
) -> Callable[[], None]:
    """Check ``dests`` (under ``root``) against the record and reserve them for ``settings``;
    returns the function to call when the run has completed. Raises :class:`PosterforgeError`
    naming the first conflicts when an existing output was made otherwise and ``overwrite`` is
    off. ``shown``: how the user named a setting, ``{"model": ("style", "vintage")}``, kept in
    the record (not in the fingerprint) so that a refusal can say it in the user's words."""
    root = Path(root)
    fp = fingerprint(settings)
    kept = {**settings, SHOWN: {k: list(v) for k, v in (shown or {}).items()}}
    replaced: list[str] = []
    with _locked(root) as record:
        files, known = record["files"], record["settings"]
        conflicts = []
        for dest in dests:
            rel = _rel(dest, root)
            if not dest.is_file():
                files[rel] = fp
            elif files.get(rel) != fp:
                if not overwrite:
                    conflicts.append((rel, files.get(rel)))
                else:
                    files.pop(rel, None)  # unknown until this run has replaced it
                    replaced.append(rel)
        if conflicts:
            raise PosterforgeError(_explain(root, conflicts, known, kept))
        known[fp] = kept

    def done() -> None:
        if replaced:
            with _locked(root) as record:
                record["files"].update(dict.fromkeys(replaced, fp))
                record["settings"][fp] = kept

    return done


def recorded(root: Path, dests: Sequence[Path], key: str, model: str) -> set[Any]:
    """The values of setting ``key`` with which ``model`` made (or began to make: a killed run's
    outputs are recorded at once) any of ``dests``, per the record under ``root``; read without
    the lock (what a run follows, checked again when it reserves)."""
    try:
        record = json.loads((Path(root) / RECORD).read_text())
        files, known = record["files"], record["settings"]
        found = set()
        for dest in dests:
            made = known.get(files.get(_rel(dest, Path(root))))
            if isinstance(made, dict) and made.get("model") == model and key in made:
                found.add(made[key])
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()  # no record, or one not to trust: nothing to follow


def _rel(dest: Path, root: Path) -> str:
    try:
        return Path(dest).relative_to(root).as_posix()
    except ValueError:
        return Path(dest).as_posix()


SHOWN = "shown"  # the record's key for how the user named the settings
# the options behind the settings, as a user types them
OPTION_NAMES = {"size": "--size", "format": "--format", "alpha": "--alpha", "quality": "--quality",
                "metadata": "--metadata", "precision": "--precision", "seed": "--seed",
                "truncation": "--truncation", "vcodec": "--vcodec", "crf": "--crf",
                "backend": "--backend"}  # fmt: skip
UNSAID = {"backend": "torch"}  # what a setting left out of the record means


def _explain(
    root: Path,
    conflicts: list[tuple[str, str | None]],
    known: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> str:
    rel, made = conflicts[0]
    if made is None or made not in known:
        why = "no record of the settings that made it"
    else:
        old = known[made]
        keys = sorted((set(old) | set(settings)) - {SHOWN})
        diff = [_change(k, old, settings) for k in keys if old.get(k) != settings.get(k)]
        why = "made with other settings (" + "; ".join(diff) + ")"
    more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
    return (
        f"{root / rel}: exists, {why}{more}; pass --overwrite to replace, "
        "or write to another --out"
    )


def _change(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``--size: not given, now 128``; ``style vintage, now yourname`` where the record kept the
    names the user gave (an older record: the model's id)."""
    was, now = old.get(SHOWN, {}).get(key), new.get(SHOWN, {}).get(key)
    if was and now:
        return f"{was[0]} {was[1]}, now {now[1]}" if was[0] == now[0] else (
            f"{was[0]} {was[1]}, now {now[0]} {now[1]}"
        )
    was, now = (d.get(key, UNSAID.get(key)) for d in (old, new))
    return f"{OPTION_NAMES.get(key, key)}: {_plain(was)}, now {_plain(now)}"


def _plain(value: Any) -> str:
    """A setting as the user would have typed it."""
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and (m := re.fullmatch(r"Size\((.*)\)", value)):
        parts = dict(p.split("=") for p in m[1].split(", "))
        if parts.get("short") not in (None, "None"):
            return parts["short"]
        return f"{parts.get('width')}x{parts.get('height')}"
    return str(value)


class _locked:
    """The folder's record, read under its lock and written back on a clean exit."""

    def __init__(self, root: Path):
        self.path = root / RECORD

    def __enter__(self) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while (lock := _claim(self.path)) is None:
            if time.monotonic() > deadline:
                raise PosterforgeError(f"{self.path}: locked by another run for over a minute")
            time.sleep(0.05)
        self.lock = lock
        try:
            record = json.loads(self.path.read_text())
            if not all(isinstance(record.get(k), dict) for k in ("files", "settings")):
                raise ValueError
        except (OSError, ValueError, AttributeError):
            record = {"files": {}, "settings": {}}  # none yet, or unreadable: trust nothing
        self.record = record
        self.before = json.dumps(record, sort_keys=True) + "\n"
        return record

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                used = set(self.record["files"].values())
                self.record["settings"] = {
                    k: v for k, v in self.record["settings"].items() if k in used
                }
                text = json.dumps(self.record, sort_keys=True) + "\n"
                if text != self.before:
                    self._write(text)
        finally:
            self.lock.release()

    def _write(self, text: str) -> None:
        """Best effort: without a record (a full disk, a read-only folder), a later run trusts
        none of these outputs and asks for --overwrite, which is the safe side."""
        try:
            write_text_atomic(self.path, text)
        except OSError as e:
            log.warning("cannot record the settings of the outputs in %s: %s", self.path, e)


def _claim(path: Path) -> Any:
    """The record's lock; where no lock can be made (a read-only folder) a stand-in that holds
    nothing: the record will not be written there either."""
    try:
        return claim(path)
    except OSError:
        return _NoLock()


class _NoLock:
    def release(self) -> None:
        pass
