"""A film to cut frames from: opened and checked once (through :func:`posterforge.video.io.probe`,
the one probe of a video), with the frame-time stamps used in file names and messages."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.video.io import Probe, Problem, VideoError, probe

# Containers whose duration is written in the header (for others, e.g. MPEG-TS, FFmpeg estimates
# it from the bit rate, which says nothing about a cut-short file).
_HEADER_DURATION = frozenset({"matroska", "webm", "mov", "mp4", "avi", "asf", "flv", "ogg"})


class FilmError(PosterforgeError):
    """A film that cannot be cut; ``str(e)`` is ``"{path}: {reason}"`` on one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path, self.reason = Path(path), " ".join(reason.split())
        super().__init__(f"{self.path}: {self.reason}")


@dataclass
class Film:
    """An opened and checked film: its name under ``OUT``, its picture's size, its duration."""

    path: Path
    name: str
    width: int  # as shown: the stored width times the sample aspect ratio
    height: int
    stored_width: int
    duration: float | None  # seconds, when the header says
    trust_duration: bool  # the header's duration is written, not estimated
    bytes: int = 0  # the file's size: tells another film of the same name from a moved one


def open_film(path: str | os.PathLike[str]) -> Film:
    """Check that ``path`` is a film file with a video stream PyAV can decode, and describe it;
    raises :class:`FilmError`."""
    path = Path(path)
    size = _file_size(path)
    try:
        info = probe(path, first_frame=False)
    except VideoError as e:
        raise _film_error(path, e) from None
    if info.format == "image2" or info.format.endswith("_pipe"):
        raise FilmError(path, "an image, not a video")
    duration, trust = _duration(info)
    name = path.stem.lstrip(".") or "film"  # a hidden folder would be skipped by the trainer
    return Film(path, name, info.shown_width, info.height, info.width, duration, trust, size)


def _file_size(path: Path) -> int:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FilmError(path, "no such file") from None
    except OSError as e:
        raise FilmError(path, f"cannot open: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FilmError(path, "is a folder; give the film files")
    if not stat.S_ISREG(st.st_mode):
        raise FilmError(path, "not a regular file")
    if st.st_size == 0:
        raise FilmError(path, "empty file")
    return st.st_size


def _film_error(path: Path, e: VideoError) -> FilmError:
    """The probe's problem in the words of ``posterforge frames``."""
    import av

    if e.problem is Problem.UNREADABLE and e.cause is not None:
        reason = getattr(e.cause, "strerror", None) or str(e.cause)
        if isinstance(e.cause, av.FFmpegError):
            why = f"not a video, or one cut short before its index (FFmpeg: {reason})"
            return FilmError(path, why)
        return FilmError(path, f"cannot open: {reason}")
    if e.problem is Problem.NO_VIDEO:
        return FilmError(path, "no video stream (audio only?)")
    if e.problem is Problem.NO_DECODER:
        return FilmError(path, "its video stream has no decoder or no picture size")
    return FilmError(path, e.reason)


def _duration(info: Probe) -> tuple[float | None, bool]:
    """The film's length and whether to hold it to it (a cut-short file ends well before)."""
    trust = bool(set(info.format.split(",")) & _HEADER_DURATION)
    if info.stream_duration is not None:
        return info.stream_duration, trust
    if info.container_duration is not None:
        return info.container_duration, trust
    return None, False


def stamp(seconds: float) -> str:
    """``00h01m02s345`` for 62.345 s: sorts by time, and reads as one."""
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}h{m:02d}m{s:02d}s{ms:03d}"


def clock(seconds: float) -> str:
    """``1:02:03.450``."""
    ms = max(0, round(seconds * 1000))
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
