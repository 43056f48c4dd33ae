"""``posterforge frames``: options into a :class:`~posterforge.jobs.frames.FramesJob`, run by
:func:`posterforge.video.frames.run_frames` (what :func:`posterforge.api.frames` runs too), and
the records rendered.

stdout carries one line per frame written (its path), or with ``--json`` one JSON object per frame
picked (written or already there); progress, notes and the per-film summary go to stderr.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from posterforge.cli.exits import EXIT_FAILED_INPUTS, EXIT_OK
from posterforge.cli.output import ProgressLine
from posterforge.cli.signals import closed_pipe, exit_code

if TYPE_CHECKING:
    from posterforge.cli.output import Lines
    from posterforge.jobs.frames import FrameMode, FramesJob
    from posterforge.video.frames import Film, FilmReport, FrameRecord

_REQUIRED = inspect.Parameter.empty
# (name, type, typer's parameter, default): the command's options, in the order --help shows them
OPTIONS: list[tuple[str, Any, Any, Any]] = [
    ("films", list[Path], typer.Argument(help="Video files (anything FFmpeg reads)."), _REQUIRED),
    (
        "out",
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder: OUT/FILM/FILM_00h01m02s345.png per frame, and OUT/frames.jsonl.",
        ),
        _REQUIRED,
    ),
    (
        "every",
        float | None,
        typer.Option(
            help="One frame per SECONDS (the default, 1): the first at or after each multiple.",
            metavar="SECONDS",
        ),
        None,
    ),
    (
        "keyframes",
        bool,
        typer.Option("--keyframes", help="Only the key frames (fast: nothing else decodes)."),
        False,
    ),
    (
        "scenes",
        bool,
        typer.Option("--scenes", help="One frame per shot, 0.5 s after each cut."),
        False,
    ),
    (
        "scene_threshold",
        float | None,
        typer.Option(
            help="With --scenes: the change between frames that counts as a cut, 0-1 "
            "(default 0.06; lower finds more cuts).",
        ),
        None,
    ),
    (
        "size",
        str | None,
        typer.Option(
            help="Resize after --crop-bars: N (shorter side) or WxH (cover, then centre-crop)."
        ),
        None,
    ),
    (
        "crop_bars",
        bool,
        typer.Option("--crop-bars", help="Crop the black letterbox/pillarbox bars of each film."),
        False,
    ),
    (
        "dedupe",
        int | None,
        typer.Option(
            help="Drop a frame within THRESHOLD bits (0-64) of the 64-bit dHash of a frame kept "
            "from the same film (4-10 drops near-repeats).",
            metavar="THRESHOLD",
        ),
        None,
    ),
    (
        "max_frames",
        int | None,
        typer.Option("--max", help="At most N frames per film.", metavar="N"),
        None,
    ),
    ("fmt", str, typer.Option("--format", "-f", help="png, jpg or webp."), "png"),
    ("quality", int, typer.Option(help="JPEG and WebP quality, 1-100."), 95),
    (
        "overwrite",
        bool,
        typer.Option(
            "--overwrite", help="Cut films again whose frames exist (their old frames are removed)."
        ),
        False,
    ),
    ("as_json", bool, typer.Option("--json", help="One JSON object per frame on stdout."), False),
    ("quiet", bool, typer.Option("--quiet", "-q", help="No progress or summary."), False),
]


def frames(**given: Any) -> None:
    """Cut training frames out of films: [bold]posterforge frames film.mkv -o frames/a --scenes[/].

    Re-running the same command skips what is done; the folder is ready for
    [bold]posterforge train translator --a[/]. Exit code 0 when every film was cut whole, 1 when a
    film broke off (its frames up to there are kept), 2 on a usage error or a file that is not a
    video, 130 when interrupted (run it again to resume).
    """
    from posterforge.cli.output import Lines
    from posterforge.video.frames import run_frames

    as_json, quiet = given.pop("as_json"), given.pop("quiet")
    job = _job(**given)
    lines = Lines()
    bar = _FilmProgress() if not quiet and sys.stderr.isatty() else None
    notify = None if quiet else lines.err
    records = run_frames(job, notify=notify, progress=bar.update if bar is not None else None)
    lines.progress = bar
    try:
        failed = _render(records, lines, as_json=as_json, quiet=quiet)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP taken as one
        lines.close()
        lines.err(
            "posterforge: interrupted; run the same command again to resume "
            "(frames written are kept and skipped)"
        )
        raise typer.Exit(exit_code(e)) from None
    except BrokenPipeError:
        closed_pipe()
    finally:
        records.close()  # type: ignore[attr-defined]
    lines.close()
    raise typer.Exit(EXIT_FAILED_INPUTS if failed else EXIT_OK)


frames.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=Annotated[t, o]
        )
        for name, t, o, d in OPTIONS
    ]
)


def _job(
    *,
    every: float | None,
    keyframes: bool,
    scenes: bool,
    scene_threshold: float | None,
    **rest: Any,
) -> FramesJob:
    """The job the options ask for; the choice of mode is the flags' to check."""
    from posterforge.errors import PosterforgeError
    from posterforge.jobs.frames import FramesJob

    if keyframes + scenes + (every is not None) > 1:
        raise PosterforgeError("choose one of --every, --keyframes and --scenes")
    if scene_threshold is not None and not scenes:
        raise PosterforgeError("--scene-threshold applies to --scenes")
    rest["fmt"] = rest["fmt"].lower().lstrip(".").replace("jpeg", "jpg")
    if scene_threshold is not None:
        rest["scene_threshold"] = scene_threshold
    mode: FrameMode = "keyframes" if keyframes else "scenes" if scenes else "every"
    return FramesJob(mode=mode, every=every if every is not None else 1.0, **rest)


def _render(
    records: Iterator[FrameRecord | FilmReport],
    lines: Lines,
    *,
    as_json: bool,
    quiet: bool,
) -> bool:
    """Each frame's path (or JSON) on stdout, each film's summary on stderr; returns whether a
    film broke off or failed."""
    from posterforge.records import Status
    from posterforge.video.records import FilmStatus, FrameRecord

    failed, start = False, time.perf_counter()
    for rec in records:
        if isinstance(rec, FrameRecord):
            if as_json:
                lines.out(json.dumps(rec.as_dict()))
            elif rec.status == Status.OK:
                lines.out(rec.output)
            continue
        bad = rec.status in (FilmStatus.BROKEN, FilmStatus.FAILED)
        failed |= bad
        if lines.progress is not None:
            lines.progress.clear()
        if bad or not quiet:
            lines.err(_summary(rec, time.perf_counter() - start))
        start = time.perf_counter()
    return failed


def _summary(rep: FilmReport, secs: float) -> str:
    from posterforge.video.records import FilmStatus

    if rep.status == FilmStatus.FAILED:
        return f"posterforge: error: {rep.error}"
    if rep.status == FilmStatus.BUSY:
        return f"{rep.film}: skipped, {rep.error}"
    if rep.status == FilmStatus.FINISHED_BEFORE:
        return f"{rep.film}: {_n(rep.picked)}, cut before (--overwrite cuts it again)"
    parts = [f"{_n(rep.picked)} ({rep.written} written, {rep.skipped} there already)"]
    if rep.repeats:
        parts.append(f"{rep.repeats} near-repeats dropped")
    text = f"{rep.film}: " + ", ".join(parts) + f" in {secs:.1f} s"
    if rep.status == FilmStatus.BROKEN:
        kept = f"kept the {_n(rep.picked)} up to there"
        text = f"posterforge: error: {rep.film}: {rep.error}; {kept}"
    return text


def _n(frames: int) -> str:
    return f"{frames} frame{'' if frames == 1 else 's'}"


class _FilmProgress(ProgressLine):
    """``film.mkv [####....] 0:12:34/1:58:00 42 frames 6.1x``: how far into the film, the frames
    picked so far and the speed against real time."""

    def __init__(self) -> None:
        super().__init__("", 0)
        self.film: Film | None = None
        self.t, self.picked = 0.0, 0

    def update(self, film: Film, t: float, picked: int) -> None:
        if film is not self.film:
            self.film, self.start, self.drawn_at = film, time.monotonic(), 0.0
            self.label, self.total = film.path.name, round(film.duration or 0)
        self.t, self.picked, self.done = t, picked, round(t)
        if time.monotonic() - self.drawn_at >= self.every:
            self.draw()

    def text(self, width: int = 79) -> str:
        from posterforge.video.films import clock

        secs = time.monotonic() - self.start
        speed = f" {self.t / secs:.1f}x" if secs > 0 else ""
        whole = f"/{clock(self.total).split('.')[0]}" if self.total else ""
        tail = f" {clock(self.t).split('.')[0]}{whole} {_n(self.picked)}{speed}"
        room = min(30, width - len(self.label) - len(tail) - 3)
        if room < 5 or not self.total:
            return (self.label + tail)[:width]
        filled = min(room, room * self.done // max(self.total, 1))
        return f"{self.label} [{'#' * filled}{'.' * (room - filled)}]{tail}"
