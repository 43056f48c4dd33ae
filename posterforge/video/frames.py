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

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import claim, remove_stale
from posterforge.errors import PosterforgeError
from posterforge.images import FORMATS, format_for
from posterforge.jobs.frames import FRAME_FORMATS, MODES, FrameOptions, FramesJob, parse_size
from posterforge.outputs import fingerprint
from posterforge.records import Status
from posterforge.video.decoding import FilmDecoder, find_bars, picked
from posterforge.video.films import Film, FilmError, clock, open_film, stamp
from posterforge.video.io import upright_turns
from posterforge.video.manifest import MANIFEST, FilmState, Manifest, conflict
from posterforge.video.picks import Repeats, dhash
from posterforge.video.records import FilmReport, FilmStatus, FrameRecord
from posterforge.video.writing import FrameWriter, picture

if TYPE_CHECKING:
    import av.video.frame
    import numpy as np

__all__ = [
    "FRAME_FORMATS", "MANIFEST", "MODES", "Film", "FilmError", "FilmReport", "FilmState",
    "FrameOptions", "FrameRecord", "FramesJob", "Manifest", "Progress", "clock", "conflict",
    "cut_frames", "open_film", "parse_size", "run_frames", "stamp",
]  # fmt: skip

Progress = Callable[[Film, float, int], None]  # (film, seconds decoded, frames picked)


def run_frames(
    job: FramesJob,
    *,
    notify: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> Iterator[FrameRecord | FilmReport]:
    """Run ``job``: a :class:`FrameRecord` per frame picked, then a :class:`FilmReport` per film.

    Everything that can be checked before decoding is checked now, when called, each problem a
    :class:`PosterforgeError` with one line: that each film opens with a video stream, that no two
    films share a name, and that no film's frames were cut with other settings (unless
    ``job.overwrite``). ``notify`` takes notes for the user; ``progress`` how far a film is.
    """
    plan = [open_film(f) for f in job.films]
    _check_names(plan, job.out)
    manifest = Manifest(job.out)
    records = manifest.read()
    settings = job.settings()
    for film in plan:
        why = conflict(job.out, film, manifest.state(film.name, records), settings)
        if why is not None and not job.overwrite:
            raise PosterforgeError(why)
    return _run(plan, job, manifest, notify or (lambda _: None), progress)


def cut_frames(
    films: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: FrameOptions | None = None,
    *,
    overwrite: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> Iterator[FrameRecord | FilmReport]:
    """:func:`run_frames` of the job that ``options`` for ``films`` into ``out`` make."""
    options = options or FrameOptions()
    chosen = {f.name: getattr(options, f.name) for f in fields(FrameOptions)}
    job = FramesJob(films=tuple(map(Path, films)), out=Path(out), overwrite=overwrite, **chosen)
    return run_frames(job, notify=notify, progress=progress)


def _check_names(plan: list[Film], out: Path) -> None:
    """Each film once, and no two of one name (they would share ``OUT/<name>``)."""
    by_name: dict[str, Film] = {}
    for film in plan:
        if (other := by_name.setdefault(film.name, film)) is not film:
            if os.path.samefile(other.path, film.path):
                raise PosterforgeError(f"{film.path}: given twice")
            raise PosterforgeError(
                f"{other.path} and {film.path} would share the folder {out / film.name}; "
                "rename one, or cut them into different --out folders"
            )


def _run(
    plan: list[Film],
    job: FramesJob,
    manifest: Manifest,
    notify: Callable[[str], None],
    progress: Progress | None,
) -> Iterator[FrameRecord | FilmReport]:
    for film in plan:
        lock = claim(job.out / film.name)
        if lock is None:
            error = "another run is cutting it"
            yield FilmReport(str(film.path), film.name, FilmStatus.BUSY, error=error)
            continue
        try:
            remove_stale(job.out / film.name)
            yield from _Cut(film, job, manifest, notify, progress).run()
        finally:
            lock.release()


class _Cut:
    """One film, cut under its lock: its frames' records as they are settled, then its report."""

    def __init__(
        self,
        film: Film,
        job: FramesJob,
        manifest: Manifest,
        notify: Callable[[str], None],
        progress: Progress | None,
    ):
        self.film, self.job, self.manifest = film, job, manifest
        self.notify, self.progress = notify, progress
        self.settings = job.settings()
        self.fp = fingerprint(self.settings)
        size = (film.width, film.height)
        self.report = FilmReport(str(film.path), film.name, FilmStatus.DONE, size=size)
        self.suffix = FORMATS[format_for(job.fmt)].suffix

    def run(self) -> Iterator[FrameRecord | FilmReport]:
        state = self._state()
        if state is not None:
            crop = self._start()
            decoder = FilmDecoder(self.film, keyframes_only=self.job.mode == "keyframes")
            yield from self._frames(decoder, state, crop)
            self._finish(decoder)
        yield self.report

    def _state(self) -> FilmState | None:
        """What the manifest holds of the film (read again, under its lock), or None when there
        is nothing to cut (the report says why). With ``overwrite`` the old cut's frames go."""
        film, job, report = self.film, self.job, self.report
        state = self.manifest.state(film.name)
        why = conflict(job.out, film, state, self.settings)
        if why is not None and not job.overwrite:
            report.status, report.error = FilmStatus.FAILED, why
            return None
        if state.settings == self.fp and state.done is not None and not job.overwrite:
            report.status, report.picked = FilmStatus.FINISHED_BEFORE, state.done
            return None
        if job.overwrite and state.settings is not None:
            for rel in state.frames:
                dest = job.out / rel
                if dest.parent == job.out / film.name:  # only what this film's cut wrote
                    with suppress(FileNotFoundError):
                        dest.unlink()
            state = FilmState(settings=self.fp)
        return state

    def _start(self) -> tuple[int, int, int, int] | None:
        """Find the bars (with ``crop_bars``) and write the cut's start line; returns the crop."""
        film = self.film
        crop = find_bars(film) if self.job.crop_bars else None
        if crop is not None:
            self.report.crop = crop
            left, top, right, bottom = crop
            shown = f"{film.width}x{film.height} -> {right - left}x{bottom - top}"
            self.notify(f"{film.path}: bars cropped, {shown}")
        self.source = str(film.path.resolve())
        self.manifest.append(
            {
                "cut": "start",
                "film": film.name,
                "source": self.source,
                "bytes": film.bytes,
                "settings": self.fp,
                "options": self.settings,
                "reset": self.job.overwrite,
                "crop": list(crop) if crop else None,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        return crop

    def _frames(
        self, decoder: FilmDecoder, state: FilmState, crop: tuple[int, int, int, int] | None
    ) -> Iterator[FrameRecord]:
        job, report = self.job, self.report
        size = job.resize
        repeats = Repeats(job.dedupe) if job.dedupe is not None else None
        frames = picked(self._decoded(decoder), job, 1 / decoder.step)
        writer = FrameWriter(self.manifest)
        try:
            for t, frame in frames:
                if report.picked == 0 and upright_turns(frame) % 2:  # the size as shown
                    report.size = (self.film.height, self.film.width)
                rgb = picture(frame, self.film, crop, size)
                h = dhash(rgb)
                if repeats is not None and repeats.seen(h):
                    report.repeats += 1
                    continue
                report.picked += 1
                yield from self._settled(self._put(writer, state, t, rgb, h))
                if job.max_frames is not None and report.picked >= job.max_frames:
                    break
            yield from self._settled(writer.drain())
        finally:
            writer.close()
            frames.close()
            decoder.close()

    def _decoded(self, decoder: FilmDecoder) -> Iterator[tuple[float, av.video.frame.VideoFrame]]:
        for t, frame in decoder:
            if self.progress is not None:
                self.progress(self.film, t, self.report.picked)
            yield t, frame

    def _put(
        self, writer: FrameWriter, state: FilmState, t: float, rgb: np.ndarray, h: int
    ) -> list[FrameRecord]:
        """Hand the frame at ``t`` to the writer (or only its record, when the manifest has it);
        returns the records settled meanwhile."""
        film = self.film
        rel = f"{film.name}/{film.name}_{stamp(t)}{self.suffix}"
        record = FrameRecord(
            film=str(film.path),
            time=round(t, 3),
            output=str(self.job.out / rel),
            status=Status.SKIPPED,
            size=(rgb.shape[1], rgb.shape[0]),
            dhash=f"{h:016x}",
        )
        if rel in state.frames:
            self.report.skipped += 1
            return writer.put(record)
        line: dict[str, Any] = {
            "frame": rel,
            "film": film.name,
            "source": self.source,
            "time": record.time,
            "size": list(record.size),
            "dhash": record.dhash,
            "settings": self.fp,
        }
        return writer.put(record, rgb, self.job, line)

    def _settled(self, records: Iterable[FrameRecord]) -> Iterator[FrameRecord]:
        for rec in records:
            self.report.written += rec.status == Status.OK
            yield rec

    def _finish(self, decoder: FilmDecoder) -> None:
        """Say how the cut ended: ``broken`` (no done line, so a re-run tries again: the file
        may be whole then) or done."""
        report, job = self.report, self.job
        if self.progress is not None:
            self.progress(self.film, decoder.end, report.picked)
        capped = job.max_frames is not None and report.picked >= job.max_frames
        report.error = decoder.broken or (None if capped else decoder.truncated())
        if report.error is not None:
            report.status = FilmStatus.BROKEN
        else:
            done = {"cut": "done", "film": self.film.name, "settings": self.fp}
            self.manifest.append({**done, "frames": report.picked})
