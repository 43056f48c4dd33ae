"""Cut the frames of a training domain out of films (``posterforge frames``). PyAV, numpy, Pillow.

Layout of ``OUT``, which ``posterforge train translator --a OUT`` reads as it is (image folders
are walked recursively; ``frames.jsonl`` and the hidden lock files are not images)::

    OUT/frames.jsonl                          one JSON line per frame written, and per film cut
    OUT/<film>/<film>_00h01m02s345.png        the frame 1 min 2.345 s into <film>.mkv

``<film>`` is the film's file name without its suffix; the time is the frame's time stamp from
the start of the film, as a player shows it, so every training image can be traced back to its
film and moment (the manifest also holds the film's full path, the frame's size and its dHash).

A film is cut under a lock (two runs on one folder share the films), and re-running the same
command skips what the manifest records: a finished film is not decoded again, an interrupted one
is decoded again but writes only its missing frames. Frames you delete by hand stay deleted.
A film cut with other settings is refused unless ``overwrite``, which removes that cut's frames
(only the files the manifest lists) and cuts it again.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.atomic import claim, remove_stale
from posterforge.errors import PosterforgeError
from posterforge.images import FORMATS, encode_atomic, format_for
from posterforge.outputs import fingerprint
from posterforge.video.picks import (
    BAR_SAMPLES,
    SCENE_THRESHOLD,
    THUMB,
    BarMeter,
    Every,
    Repeats,
    ShotPicker,
    dhash,
)

if TYPE_CHECKING:
    import av.container
    import av.video.frame
    import av.video.stream

MANIFEST = "frames.jsonl"
MODES = ("every", "keyframes", "scenes")
FRAME_FORMATS = ("png", "jpg", "webp")
MAX_SIDE = 16384
# A film whose header promises this much more than its packets hold was cut short (audio may
# outlast the picture by a second or two in a whole film).
TRUNCATED_S, TRUNCATED_FRACTION = 2.0, 0.01
# Containers whose duration is written in the header (for others, e.g. MPEG-TS, FFmpeg estimates
# it from the bit rate, which says nothing about a cut-short file).
_HEADER_DURATION = frozenset({"matroska", "webm", "mov", "mp4", "avi", "asf", "flv", "ogg"})


class FilmError(PosterforgeError):
    """A film that cannot be cut; ``str(e)`` is ``"{path}: {reason}"`` on one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path, self.reason = Path(path), " ".join(reason.split())
        super().__init__(f"{self.path}: {self.reason}")


# --- settings -------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int] | int:
    """``N`` (the shorter side, aspect kept) or ``WxH`` (cover it, then centre-crop)."""
    if m := re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text):
        w, h = int(m[1]), int(m[2])
        if 0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE:
            return w, h
    elif (m := re.fullmatch(r"\s*(\d+)\s*", text)) and 0 < int(m[1]) <= MAX_SIDE:
        return int(m[1])
    raise PosterforgeError(
        f"invalid --size {text!r}: use N (shorter side) or WxH, e.g. 256x256, at most {MAX_SIDE}"
    )


@dataclass(frozen=True)
class FrameOptions:
    """What to cut from each film. ``mode``: ``every`` (one frame per ``every`` seconds),
    ``keyframes`` or ``scenes`` (one frame per shot, a cut being a change over
    ``scene_threshold``)."""

    mode: str = "every"
    every: float = 1.0
    scene_threshold: float = SCENE_THRESHOLD
    size: str | None = None
    crop_bars: bool = False
    dedupe: int | None = None
    max_frames: int | None = None
    fmt: str = "png"
    quality: int = 95

    def check(self) -> None:
        """Raise :class:`PosterforgeError` (one line) for settings that cannot work."""
        if self.mode not in MODES:
            raise PosterforgeError(f"invalid mode {self.mode!r}: use {', '.join(MODES)}")
        if not (math.isfinite(self.every) and self.every > 0):
            raise PosterforgeError(f"invalid --every {self.every}: use a number of seconds > 0")
        if not 0 < self.scene_threshold < 1:
            raise PosterforgeError(
                f"invalid --scene-threshold {self.scene_threshold}: use a number between 0 and 1"
            )
        if self.size is not None:
            parse_size(self.size)
        if self.dedupe is not None and not 0 <= self.dedupe <= 64:
            raise PosterforgeError(f"invalid --dedupe {self.dedupe}: use 0 to 64 (bits)")
        if self.max_frames is not None and self.max_frames < 1:
            raise PosterforgeError(f"invalid --max {self.max_frames}: use 1 or more")
        if self.fmt not in FRAME_FORMATS:
            raise PosterforgeError(f"invalid --format {self.fmt!r}: use {', '.join(FRAME_FORMATS)}")
        if not 1 <= self.quality <= 100:
            raise PosterforgeError(f"invalid --quality {self.quality}: use 1 to 100")

    def settings(self) -> dict[str, Any]:
        """The settings that decide which frames a film gives and how they look (what a re-run
        compares); a setting that does not apply to the mode or format is left out."""
        s: dict[str, Any] = {"mode": self.mode}
        if self.mode == "every":
            s["every"] = self.every
        if self.mode == "scenes":
            s["scene_threshold"] = self.scene_threshold
        s.update(size=self.size, crop_bars=self.crop_bars, dedupe=self.dedupe)
        s.update(max=self.max_frames, format=self.fmt)
        if self.fmt in ("jpg", "webp"):
            s["quality"] = self.quality
        return s


# --- records --------------------------------------------------------------------------------------


@dataclass
class FrameRecord:
    """One frame picked from a film: ``ok`` (written now) or ``skipped`` (the manifest has it)."""

    film: str  # the film's path as given
    time: float  # seconds from the start of the film
    output: str  # the frame's path
    status: str
    size: tuple[int, int]  # (W, H)
    dhash: str  # 16 hex digits

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "size": list(self.size)}


@dataclass
class FilmReport:
    """The outcome of one film: ``done``, ``finished-before`` (done by an earlier run with the
    same settings), ``busy`` (another run holds it), ``broken`` (cut as far as it decodes; see
    ``error``) or ``failed``."""

    film: str
    name: str
    status: str
    picked: int = 0
    written: int = 0
    skipped: int = 0
    repeats: int = 0
    crop: tuple[int, int, int, int] | None = None
    error: str | None = None
    size: tuple[int, int] | None = None  # (W, H) of the film's picture as shown


# --- films ----------------------------------------------------------------------------------------


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


def probe(path: str | os.PathLike[str]) -> Film:
    """Open ``path`` and check that it is a film with a video stream PyAV can decode; raises
    :class:`FilmError`."""
    import av

    path = Path(path)
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
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise FilmError(
            path, f"not a video, or one cut short before its index (FFmpeg: {reason})"
        ) from None
    except OSError as e:
        raise FilmError(path, f"cannot open: {e.strerror or e}") from None
    with container:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):
            raise FilmError(path, "an image, not a video")
        stream = _video_stream(container)
        if stream is None:
            raise FilmError(path, "no video stream (audio only?)")
        ctx = stream.codec_context
        if ctx is None or not ctx.width or not ctx.height:
            raise FilmError(path, "its video stream has no decoder or no picture size")
        w, h = ctx.width, ctx.height
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        shown_w = max(1, round(w * sar)) if sar and sar > 0 and sar != 1 else w
        duration, trust = _duration(container, stream)
    name = path.stem.lstrip(".") or "film"  # a hidden folder would be skipped by the trainer
    return Film(path, name, shown_w, h, w, duration, trust, st.st_size)


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    import av

    for stream in container.streams.video:
        pic = getattr(av.stream.Disposition, "attached_pic", 0)
        if not (pic and stream.disposition & pic):  # cover art of a music file is no film
            return stream
    return None


def _duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[float | None, bool]:
    trust = bool(set(container.format.name.split(",")) & _HEADER_DURATION)
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base), trust
    if container.duration is not None:
        return container.duration / 1_000_000, trust
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


# --- the manifest ---------------------------------------------------------------------------------


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
        records = []
        for line in data.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("film"), str):
                records.append(rec)
        return records

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


# --- the run --------------------------------------------------------------------------------------

Progress = Callable[[Film, float, int], None]  # (film, seconds decoded, frames picked)


def cut_frames(
    films: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: FrameOptions | None = None,
    *,
    overwrite: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> Iterator[FrameRecord | FilmReport]:
    """Cut frames from ``films`` into ``out``: a :class:`FrameRecord` per frame picked, then a
    :class:`FilmReport` per film.

    Everything that can be checked before decoding is checked now, when called, each problem a
    :class:`PosterforgeError` with one line: the options, that each film opens with a video stream,
    that no two films share a name, and that no film's frames were cut with other settings (unless
    ``overwrite``).
    """
    options = options or FrameOptions()
    options.check()
    out = Path(out)
    if not films:
        raise PosterforgeError("no films given")
    if out.exists() and not out.is_dir():
        raise PosterforgeError(f"--out {out}: not a folder")
    plan = [probe(f) for f in films]
    by_name: dict[str, Film] = {}
    for film in plan:
        if (other := by_name.setdefault(film.name, film)) is not film:
            if os.path.samefile(other.path, film.path):
                raise PosterforgeError(f"{film.path}: given twice")
            raise PosterforgeError(
                f"{other.path} and {film.path} would share the folder {out / film.name}; "
                "rename one, or cut them into different --out folders"
            )
    manifest = Manifest(out)
    records = manifest.read()
    settings = options.settings()
    for film in plan:
        why = conflict(out, film, manifest.state(film.name, records), settings)
        if why is not None and not overwrite:
            raise PosterforgeError(why)
    return _run(plan, out, options, manifest, overwrite, notify or (lambda _: None), progress)


def _run(
    plan: list[Film],
    out: Path,
    options: FrameOptions,
    manifest: Manifest,
    overwrite: bool,
    notify: Callable[[str], None],
    progress: Progress | None,
) -> Iterator[FrameRecord | FilmReport]:
    for film in plan:
        lock = claim(out / film.name)
        if lock is None:
            yield FilmReport(str(film.path), film.name, "busy", error="another run is cutting it")
            continue
        try:
            remove_stale(out / film.name)
            yield from _cut(film, out, options, manifest, overwrite, notify, progress)
        finally:
            lock.release()


def _cut(
    film: Film,
    out: Path,
    options: FrameOptions,
    manifest: Manifest,
    overwrite: bool,
    notify: Callable[[str], None],
    progress: Progress | None,
) -> Iterator[FrameRecord | FilmReport]:
    settings = options.settings()
    fp = fingerprint(settings)
    report = FilmReport(str(film.path), film.name, "done", size=(film.width, film.height))
    state = manifest.state(film.name)  # again, under the film's lock
    why = conflict(out, film, state, settings)
    if why is not None and not overwrite:
        report.status, report.error = "failed", why
        yield report
        return
    if state.settings == fp and state.done is not None and not overwrite:
        report.status, report.picked = "finished-before", state.done
        yield report
        return
    if overwrite and state.settings is not None:
        for rel in state.frames:
            dest = out / rel
            if dest.parent == out / film.name:  # only what this film's cut wrote
                with suppress(FileNotFoundError):
                    dest.unlink()
        state = FilmState(settings=fp)

    crop = _find_bars(film) if options.crop_bars else None
    if crop is not None:
        report.crop = crop
        left, top, right, bottom = crop
        shown = f"{film.width}x{film.height} -> {right - left}x{bottom - top}"
        notify(f"{film.path}: bars cropped, {shown}")
    source = str(film.path.resolve())
    manifest.append(
        {
            "cut": "start",
            "film": film.name,
            "source": source,
            "bytes": film.bytes,
            "settings": fp,
            "options": settings,
            "reset": overwrite,
            "crop": list(crop) if crop else None,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    size = parse_size(options.size) if options.size is not None else None
    suffix = FORMATS[format_for(options.fmt)].suffix
    repeats = Repeats(options.dedupe) if options.dedupe is not None else None
    decoder = _Decoder(film, keyframes_only=options.mode == "keyframes")

    def decoded() -> Iterator[tuple[float, av.video.frame.VideoFrame]]:
        for t, frame in decoder:
            if progress is not None:
                progress(film, t, report.picked)
            yield t, frame

    frames = _picks(decoded(), options)
    writer = _Writer(manifest)
    try:
        for t, frame in frames:
            rgb = _picture(frame, film, crop, size)
            h = dhash(rgb)
            if repeats is not None and repeats.seen(h):
                report.repeats += 1
                continue
            report.picked += 1
            rel = f"{film.name}/{film.name}_{stamp(t)}{suffix}"
            dest = out / rel
            record = FrameRecord(
                film=str(film.path),
                time=round(t, 3),
                output=str(dest),
                status="skipped",
                size=(rgb.shape[1], rgb.shape[0]),
                dhash=f"{h:016x}",
            )
            if rel in state.frames:
                report.skipped += 1
                done = writer.put(record)
            else:
                line = {
                    "frame": rel,
                    "film": film.name,
                    "source": source,
                    "time": record.time,
                    "size": list(record.size),
                    "dhash": record.dhash,
                    "settings": fp,
                }
                done = writer.put(record, rgb, options, line)
            for rec in done:
                report.written += rec.status == "ok"
                yield rec
            if options.max_frames is not None and report.picked >= options.max_frames:
                break
        for rec in writer.drain():
            report.written += rec.status == "ok"
            yield rec
    finally:
        writer.close()
        frames.close()
        decoder.close()
    if progress is not None:
        progress(film, decoder.end, report.picked)
    capped = options.max_frames is not None and report.picked >= options.max_frames
    report.error = decoder.broken or (None if capped else decoder.truncated())
    if report.error is not None:
        report.status = "broken"  # no "done" line: a re-run tries again (the file may be whole)
    else:
        manifest.append({"cut": "done", "film": film.name, "settings": fp, "frames": report.picked})
    yield report


class _Writer:
    """Encodes frames on worker threads (compressing a PNG costs more than decoding its frame), a
    bounded number at once, and gives their records back in order, each once its file is whole and
    its manifest line written."""

    def __init__(self, manifest: Manifest, workers: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        workers = workers or min(4, os.cpu_count() or 1)
        self.manifest, self.limit = manifest, 2 * workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="posterforge-frames")
        self.pending: deque[tuple[FrameRecord, Future[None] | None, dict[str, Any] | None]]
        self.pending = deque()

    def put(
        self,
        record: FrameRecord,
        rgb: np.ndarray | None = None,
        options: FrameOptions | None = None,
        line: dict[str, Any] | None = None,
    ) -> list[FrameRecord]:
        """Queue ``record`` (and the write of ``rgb`` to its output, when given); returns the
        records settled meanwhile."""
        future = None
        if rgb is not None and options is not None:
            future = self.pool.submit(
                encode_atomic, rgb, record.output, fmt=options.fmt, quality=options.quality
            )
        self.pending.append((record, future, line))
        out = []
        while self.pending and (len(self.pending) > self.limit or _ready(self.pending[0][1])):
            out.append(self._settle())
        return out

    def drain(self) -> Iterator[FrameRecord]:
        while self.pending:
            yield self._settle()

    def _settle(self) -> FrameRecord:
        record, future, line = self.pending.popleft()
        if future is not None and line is not None:
            future.result()  # the write's error, if any, is the run's
            self.manifest.append(line)
            record.status = "ok"
        return record

    def close(self) -> None:
        """On an early end (Ctrl-C, an error): the writes in flight finish and are recorded."""
        for _, future, line in self.pending:
            if future is not None and line is not None:
                with suppress(Exception):
                    future.result()
                    self.manifest.append(line)
        self.pending.clear()
        self.pool.shutdown(wait=True)


def _ready(future: Future[None] | None) -> bool:
    return future is None or future.done()


def _picks(
    frames: Iterator[tuple[float, av.video.frame.VideoFrame]], options: FrameOptions
) -> Iterator[tuple[float, av.video.frame.VideoFrame]]:
    """The frames that ``options.mode`` keeps, in order (before --dedupe and --max)."""
    if options.mode == "scenes":
        shots: ShotPicker[tuple[float, Any]] = ShotPicker(options.scene_threshold)
        for t, frame in frames:
            thumb = frame.reformat(
                width=THUMB[0], height=THUMB[1], format="rgb24", interpolation="AREA"
            ).to_ndarray()
            yield from shots.feed(t, thumb, (t, frame))
        yield from shots.finish()
    elif options.mode == "every":
        every = Every(options.every)
        yield from ((t, f) for t, f in frames if every(t))
    else:  # keyframes: the decoder skips the others
        yield from frames


def _picture(
    frame: av.video.frame.VideoFrame,
    film: Film,
    crop: tuple[int, int, int, int] | None,
    size: tuple[int, int] | int | None,
) -> np.ndarray:
    """The frame as shown (sample aspect ratio applied), cropped and resized: RGB (H, W, 3)."""
    if frame.width == film.stored_width and film.width != film.stored_width:
        rgb = frame.to_ndarray(format="rgb24", width=film.width, height=frame.height)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    if crop is not None and rgb.shape[:2] == (film.height, film.width):
        left, top, right, bottom = crop
        rgb = rgb[top:bottom, left:right]
    if size is not None:
        rgb = _resize(rgb, size)
    return np.ascontiguousarray(rgb)


def _resize(rgb: np.ndarray, size: tuple[int, int] | int) -> np.ndarray:
    """``N``: the shorter side to N; ``(W, H)``: cover W x H, then centre-crop (no stretching)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if isinstance(size, int):
        scale = size / min(w, h)
        tw, th = max(1, round(w * scale)), max(1, round(h * scale))
        box = None
    else:
        tw, th = size
        scale = max(tw / w, th / h)
        cw, ch = tw / scale, th / scale  # the part of the source that lands in W x H
        x, y = (w - cw) / 2, (h - ch) / 2
        box = (x, y, x + cw, y + ch)
    if (tw, th) == (w, h) and box is None:
        return rgb
    im = Image.fromarray(rgb).resize((tw, th), Image.Resampling.LANCZOS, box=box)
    return np.asarray(im)


def _find_bars(film: Film) -> tuple[int, int, int, int] | None:
    """The picture inside the film's black bars, from :data:`BAR_SAMPLES` frames spread over it
    (by seeking; without a known duration, from its key frames), or None when there are none."""
    meter = BarMeter()
    with _Decoder(film, keyframes_only=True) as decoder:
        if film.duration:
            decoder.sample(meter, BAR_SAMPLES)
        if meter.samples < min(BAR_SAMPLES, 4):  # no duration, or seeking failed: read through
            meter = BarMeter()
            with _Decoder(film, keyframes_only=True) as through:
                for _, frame in through:
                    meter.add(_grey(frame, film))
    box = meter.box()
    if box is None or box == (0, 0, film.width, film.height):
        return None
    return box


def _grey(frame: av.video.frame.VideoFrame, film: Film) -> np.ndarray:
    return frame.to_ndarray(format="gray", width=film.width, height=frame.height)


class _Decoder:
    """The frames of a film's video stream as ``(seconds from the start, frame)``.

    Decoding errors are survived (the decoder resumes at the next key frame) and the first is kept
    in ``broken``; a read error ends the film there. ``end`` is how far the packets went.
    """

    def __init__(self, film: Film, keyframes_only: bool = False):
        import av

        self.film = film
        self.container = av.open(str(film.path))
        stream = _video_stream(self.container)
        assert stream is not None  # probed
        self.stream = stream
        stream.thread_type = "AUTO"
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        self.tb = stream.time_base or Fraction(1, 1_000_000)
        self.start = stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate
        self.step = float(1 / rate) if rate else 0.04
        self.broken: str | None = None
        self.end = 0.0  # seconds, the end of the last packet read

    def seconds(self, pts: int | None) -> float | None:
        return None if pts is None else max(0.0, float((pts - self.start) * self.tb))

    def __iter__(self) -> Iterator[tuple[float, av.video.frame.VideoFrame]]:
        import av

        last = -self.step
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                self._break("reading", e)
                return
            if packet.pts is not None:
                self.end = max(self.end, self.seconds(packet.pts + (packet.duration or 0)) or 0.0)
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self._break("decoding", e, at=self.seconds(packet.pts))
                continue
            for frame in frames:
                t = self.seconds(frame.pts)
                t = last + self.step if t is None else t
                last = t
                yield t, frame

    def sample(self, meter: BarMeter, n: int) -> None:
        """Add the first frame after each of ``n`` seeks spread over the film to ``meter``."""
        import av

        duration = self.film.duration or 0.0
        for i in range(n):
            target = self.start + int(duration * (i + 0.5) / n / self.tb)
            try:
                self.container.seek(target, stream=self.stream)
                for packet in self.container.demux(self.stream):
                    frames = packet.decode()
                    if frames:
                        meter.add(_grey(frames[0], self.film))
                        break
            except av.error.FFmpegError:
                continue

    def _break(self, what: str, e: Exception, at: float | None = None) -> None:
        if self.broken is None:
            where = clock(self.end if at is None else at)
            reason = getattr(e, "strerror", None) or str(e)
            self.broken = f"{what} broke at {where}: {reason}"

    def truncated(self) -> str | None:
        """Why the film looks cut short (its packets end well before its header says), or None."""
        d = self.film.duration
        if not (self.film.trust_duration and d):
            return None
        if d - (self.end or 0.0) > max(TRUNCATED_S, TRUNCATED_FRACTION * d):
            return f"the film ends at {clock(self.end)} of its {clock(d)}: truncated or corrupt"
        return None

    def close(self) -> None:
        with suppress(Exception):
            self.container.close()

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
