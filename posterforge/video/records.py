"""What the video package yields: a frame cut from a film and each film's outcome (``posterforge
frames``), and a translated video. Light to import: the CLI tells them apart with ``isinstance``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from posterforge.records import Record, Status


@dataclass
class FrameRecord:
    """One frame picked from a film: ``ok`` (written now) or ``skipped`` (the manifest has it)."""

    film: str  # the film's path as given
    time: float  # seconds from the start of the film
    output: str  # the frame's path
    status: Status
    size: tuple[int, int]  # (W, H)
    dhash: str  # 16 hex digits

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status), "size": list(self.size)}


class FilmStatus(StrEnum):
    """What became of one film."""

    DONE = "done"
    FINISHED_BEFORE = "finished-before"  # done by an earlier run with the same settings
    BUSY = "busy"  # another run holds it
    BROKEN = "broken"  # cut as far as it decodes; see ``error``
    FAILED = "failed"


@dataclass
class FilmReport:
    """The outcome of one film (see :class:`FilmStatus`)."""

    film: str
    name: str
    status: FilmStatus
    picked: int = 0
    written: int = 0
    skipped: int = 0
    repeats: int = 0
    crop: tuple[int, int, int, int] | None = None
    error: str | None = None
    size: tuple[int, int] | None = None  # (W, H) of the film's picture as shown


@dataclass
class VideoRecord(Record):
    """A :class:`~posterforge.records.Record` for a translated video: ``frames`` in the output,
    ``seconds`` this run spent on it, and a ``note`` when the input was damaged. Tell it from an
    image's record with ``isinstance(rec, VideoRecord)``."""

    frames: int | None = None
    seconds: float = 0.0
    note: str | None = None
