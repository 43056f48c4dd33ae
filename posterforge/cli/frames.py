"""``posterforge frames``: options into a :class:`~posterforge.jobs.frames.FramesJob`, run by
:func:`posterforge.video.frames.run_frames` (what :func:`posterforge.api.frames` runs too), and
the records rendered.

stdout carries one line per frame written (its path), or with ``--json`` one JSON object per frame
picked (written or already there); progress, notes and the per-film summary go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from posterforge.cli.exits import EXIT_FAILED_INPUTS, EXIT_OK
from posterforge.cli.jobs import Opt, job_command, shown
from posterforge.cli.output import ProgressLine
from posterforge.cli.signals import closed_pipe, exit_code
from posterforge.jobs.frames import FramesJob

if TYPE_CHECKING:
    from posterforge.cli.output import Lines
    from posterforge.video.frames import Film, FilmReport, FrameRecord

OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "films": Opt(list[Path], typer.Argument(), to_field=tuple),
    "out": Opt(Path, typer.Option("--out", "-o")),
    # --every, --keyframes and --scenes choose the mode (see _mode)
    "every": Opt(float | None, typer.Option(
        help="One frame per SECONDS (the default, 1): the first at or after each multiple.",
        metavar="SECONDS"), default=None),
    "keyframes": Opt(bool, typer.Option(
        "--keyframes", help="Only the key frames (fast: nothing else decodes)."),
        default=False, for_job=True),
    "scenes": Opt(bool, typer.Option("--scenes", help="One frame per shot, 0.5 s after each cut."),
        default=False, for_job=True),
    "scene_threshold": Opt(float | None, typer.Option(
        help="With --scenes: the change between frames that counts as a cut, 0-1 "
        "(default 0.06; lower finds more cuts)."), default=None),
    "size": Opt(str | None, typer.Option()),
    "crop_bars": Opt(bool, typer.Option("--crop-bars")),
    "dedupe": Opt(int | None, typer.Option(metavar="THRESHOLD")),
    "max_frames": Opt(int | None, typer.Option("--max", metavar="N")),
    "fmt": Opt(str, typer.Option("--format", "-f"),
        to_field=lambda f: f.lower().lstrip(".").replace("jpeg", "jpg")),
    "quality": Opt(int, typer.Option()),
    "overwrite": Opt(bool, typer.Option()),
}  # fmt: skip
# how the records are shown: not part of the job
SHOWN = shown("One JSON object per frame on stdout.", "No progress or summary.")


def run(job: FramesJob, *, as_json: bool, quiet: bool) -> None:
    """Cut training frames out of films: [bold]posterforge frames film.mkv -o frames/a --scenes[/].

    Re-running the same command skips what is done; the folder is ready for
    [bold]posterforge train translator --a[/]. Exit code 0 when every film was cut whole, 1 when a
    film broke off (its frames up to there are kept), 2 on a usage error or a file that is not a
    video, 130 when interrupted (run it again to resume).
    """
    from posterforge.cli.output import Lines
    from posterforge.video.frames import run_frames

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


def _mode(values: dict[str, Any]) -> dict[str, Any]:
    """The mode the flags ask for, and the settings left to the job's defaults when not given;
    the choice of mode is the flags' to check."""
    from posterforge.errors import PosterforgeError

    keyframes, scenes = values.pop("keyframes"), values.pop("scenes")
    if keyframes + scenes + (values["every"] is not None) > 1:
        raise PosterforgeError("choose one of --every, --keyframes and --scenes")
    if values["scene_threshold"] is not None and not scenes:
        raise PosterforgeError("--scene-threshold applies to --scenes")
    for name in ("every", "scene_threshold"):
        if values[name] is None:
            del values[name]  # the job's default
    values["mode"] = "keyframes" if keyframes else "scenes" if scenes else "every"
    return {}


frames = job_command(FramesJob, OPTIONS, run, extras=SHOWN, left_out=("mode",), prepare=_mode)


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
