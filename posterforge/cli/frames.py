"""``posterforge frames``: a thin layer over :func:`posterforge.video.frames.cut_frames`.

stdout carries one line per frame written (its path), or with ``--json`` one JSON object per frame
picked (written or already there); progress, notes and the per-film summary go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from posterforge.cli import EXIT_FAILED_INPUTS, EXIT_OK
from posterforge.cli.output import ProgressLine
from posterforge.cli.signals import EXIT_INTERRUPTED, closed_pipe

if TYPE_CHECKING:
    from posterforge.video.frames import Film, FilmReport



def frames(
    films: Annotated[list[Path], typer.Argument(help="Video files (anything FFmpeg reads).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder: OUT/FILM/FILM_00h01m02s345.png per frame, and OUT/frames.jsonl.",
        ),
    ],
    every: Annotated[
        float | None,
        typer.Option(
            help="One frame per SECONDS (the default, 1): the first at or after each multiple.",
            metavar="SECONDS",
        ),
    ] = None,
    keyframes: Annotated[
        bool, typer.Option("--keyframes", help="Only the key frames (fast: nothing else decodes).")
    ] = False,
    scenes: Annotated[
        bool,
        typer.Option("--scenes", help="One frame per shot, 0.5 s after each cut."),
    ] = False,
    scene_threshold: Annotated[
        float | None,
        typer.Option(
            help="With --scenes: the change between frames that counts as a cut, 0-1 "
            "(default 0.06; lower finds more cuts).",
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            help="Resize after --crop-bars: N (shorter side) or WxH (cover, then centre-crop)."
        ),
    ] = None,
    crop_bars: Annotated[
        bool,
        typer.Option("--crop-bars", help="Crop the black letterbox/pillarbox bars of each film."),
    ] = False,
    dedupe: Annotated[
        int | None,
        typer.Option(
            help="Drop a frame within THRESHOLD bits (0-64) of the 64-bit dHash of a frame kept "
            "from the same film (4-10 drops near-repeats).",
            metavar="THRESHOLD",
        ),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max", help="At most N frames per film.", metavar="N")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="png, jpg or webp.")] = "png",
    quality: Annotated[int, typer.Option(help="JPEG and WebP quality, 1-100.")] = 95,
    overwrite: Annotated[
        bool,
        typer.Option(help="Cut films again whose frames exist (their old frames are removed)."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per frame on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
) -> None:
    """Cut training frames out of films: [bold]posterforge frames film.mkv -o frames/a --scenes[/].

    Re-running the same command skips what is done; the folder is ready for
    [bold]posterforge train translator --a[/]. Exit code 0 when every film was cut whole, 1 when a
    film broke off (its frames up to there are kept), 2 on a usage error or a file that is not a
    video, 130 when interrupted (run it again to resume).
    """
    from posterforge.cli.output import Lines
    from posterforge.errors import PosterforgeError
    from posterforge.video.frames import FrameOptions, FrameRecord, cut_frames

    if keyframes + scenes + (every is not None) > 1:
        raise PosterforgeError("choose one of --every, --keyframes and --scenes")
    if scene_threshold is not None and not scenes:
        raise PosterforgeError("--scene-threshold applies to --scenes")
    mode = "keyframes" if keyframes else "scenes" if scenes else "every"
    options = FrameOptions(
        mode=mode,
        every=every if every is not None else 1.0,
        size=size,
        crop_bars=crop_bars,
        dedupe=dedupe,
        max_frames=max_frames,
        fmt=fmt.lower().lstrip(".").replace("jpeg", "jpg"),
        quality=quality,
        **({"scene_threshold": scene_threshold} if scene_threshold is not None else {}),
    )
    lines = Lines()
    bar = _FilmProgress() if not quiet and sys.stderr.isatty() else None
    records = cut_frames(
        films,
        out,
        options,
        overwrite=overwrite,
        notify=None if quiet else lines.err,
        progress=bar.update if bar is not None else None,
    )
    lines.progress = bar
    failed = False
    start = time.perf_counter()
    try:
        for rec in records:
            if isinstance(rec, FrameRecord):
                if as_json:
                    lines.out(json.dumps(rec.as_dict()))
                elif rec.status == "ok":
                    lines.out(rec.output)
                continue
            failed |= rec.status in ("broken", "failed")
            if bar is not None:
                bar.clear()
            if rec.status in ("broken", "failed") or not quiet:
                lines.err(_summary(rec, time.perf_counter() - start))
            start = time.perf_counter()
    except KeyboardInterrupt:
        lines.close()
        lines.err(
            "posterforge: interrupted; run the same command again to resume "
            "(frames written are kept and skipped)"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        closed_pipe()
    finally:
        records.close()  # type: ignore[attr-defined]
    lines.close()
    raise typer.Exit(EXIT_FAILED_INPUTS if failed else EXIT_OK)


def _summary(rep: FilmReport, secs: float) -> str:
    if rep.status == "failed":
        return f"posterforge: error: {rep.error}"
    if rep.status == "busy":
        return f"{rep.film}: skipped, {rep.error}"
    if rep.status == "finished-before":
        return f"{rep.film}: {_n(rep.picked)}, cut before (--overwrite cuts it again)"
    parts = [f"{_n(rep.picked)} ({rep.written} written, {rep.skipped} there already)"]
    if rep.repeats:
        parts.append(f"{rep.repeats} near-repeats dropped")
    text = f"{rep.film}: " + ", ".join(parts) + f" in {secs:.1f} s"
    if rep.status == "broken":
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
        from posterforge.video.frames import clock

        secs = time.monotonic() - self.start
        speed = f" {self.t / secs:.1f}x" if secs > 0 else ""
        whole = f"/{clock(self.total).split('.')[0]}" if self.total else ""
        tail = f" {clock(self.t).split('.')[0]}{whole} {_n(self.picked)}{speed}"
        room = min(30, width - len(self.label) - len(tail) - 3)
        if room < 5 or not self.total:
            return (self.label + tail)[:width]
        filled = min(room, room * self.done // max(self.total, 1))
        return f"{self.label} [{'#' * filled}{'.' * (room - filled)}]{tail}"
