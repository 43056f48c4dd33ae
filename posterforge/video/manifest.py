"""``OUT/frames.jsonl``: what ``posterforge frames`` has cut, read back to resume a film, skip a
finished one, and refuse one cut with other settings (see :class:`Manifest`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posterforge.jsonl import json_objects
from posterforge.outputs import fingerprint
from posterforge.video.films import Film

MANIFEST = "frames.jsonl"


@dataclass
class FilmState:
    """What the manifest says of one film: the settings of its latest cut and that cut's frames."""

    settings: str | None = None  # fingerprint
    options: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, dict[str, Any]] = field(default_factory=dict)  # relative path -> record
    done: int | None = None  # frames, when the cut finished
    source: str | None = None  # the film's path and size when it was cut
    bytes: int | None = None


class Manifest:
    """``OUT/frames.jsonl``: append-only JSON lines, two kinds.

    - a frame: ``{"frame": "film/film_00h01m02s345.png", "film": "film", "source": "/abs/film.mkv",
      "time": 62.345, "size": [W, H], "dhash": "...", "settings": FP}``
    - a cut: ``{"cut": "start" | "done", "film": "film", "source": ..., "settings": FP, ...}``;
      a start with ``"reset": true`` voids that film's earlier lines (``--overwrite``).

    Each line is written with one ``write`` on a file opened for appending, so runs on other films
    can append at once; a line cut short by a crash is ignored when read (and ended, so that the
    next line starts on its own).
    """

    def __init__(self, out: Path):
        self.path = Path(out) / MANIFEST
        self._mended = False

    def read(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return json_objects(data, "film", str)

    def state(self, name: str, records: list[dict[str, Any]] | None = None) -> FilmState:
        state = FilmState()
        for rec in self.read() if records is None else records:
            if rec.get("film") != name:
                continue
            if rec.get("cut") == "start":
                if rec.get("reset") or rec.get("settings") != state.settings:
                    state = FilmState()
                state.settings = rec.get("settings")
                state.options = rec.get("options") or {}
                state.source, state.bytes = rec.get("source"), rec.get("bytes")
            elif rec.get("cut") == "done" and rec.get("settings") == state.settings:
                state.done = int(rec.get("frames") or 0)
            elif isinstance(rec.get("frame"), str) and rec.get("settings") == state.settings:
                state.frames[rec["frame"]] = rec
        return state

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if not self._mended:  # a crash may have left a line without its end
                self._mended = True
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


def conflict(out: Path, film: Film, state: FilmState, settings: dict[str, Any]) -> str | None:
    """Why the film's frames in ``out`` cannot be kept for a run with ``settings`` (one line
    naming --overwrite), or None when they can."""
    if state.settings is None:
        return None
    if state.settings != fingerprint(settings):
        return _explain(out, film.name, state.options, settings)
    if state.bytes is not None and state.bytes != film.bytes:
        return (
            f"{out / film.name}: frames exist, cut from another file of that name "
            f"({state.source}, {state.bytes} bytes; now {film.bytes}); pass --overwrite to "
            "replace them, or write to another --out"
        )
    return None


def _explain(out: Path, name: str, old: dict[str, Any], new: dict[str, Any]) -> str:
    diff = [
        f"{k} {old.get(k)!r}, now {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    why = "; ".join(diff) or "no record of its settings"
    return (
        f"{out / name}: frames exist, cut with other settings ({why}); pass --overwrite to "
        "replace them, or write to another --out"
    )
