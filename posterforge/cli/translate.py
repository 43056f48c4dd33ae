"""``posterforge translate``: options into a :class:`~posterforge.jobs.translate.TranslateJob`, run
by :func:`posterforge.translation.start` (what ``posterforge.translate`` calls), records rendered.

stdout carries exactly one line per input (an output path, or a JSON record with ``--json``),
whatever stderr is; progress, notes and errors go to stderr. A closed stdout (``| head``) ends the
run quietly by SIGPIPE (status 141), as shell tools do; Ctrl-C ends it with one line and 130.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from posterforge.cli.exits import EXIT_FAILED_INPUTS, EXIT_OK
from posterforge.cli.jobs import Opt, job_command, shown
from posterforge.cli.signals import exit_code
from posterforge.jobs.translate import STABILIZE_STRENGTH, TranslateJob, default_output
from posterforge.records import FAILED, OK, SKIPPED

if TYPE_CHECKING:
    from posterforge.cli.output import Lines
    from posterforge.inputs import Job
    from posterforge.records import Record



OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "inputs": Opt(list[str], typer.Argument(), to_field=tuple),
    "out": Opt(Path | None, typer.Option("--out", "-o", help=(
        "Output folder (mirrors the input tree), or a video file for one video input; default:"
        " beside one input, named for the style (frames-vintage/, clip-vintage.mp4).")),
        default=None),
    "style": Opt(str, typer.Option("--style", "-s")),
    "batch_size": Opt(int | None, typer.Option("--batch-size", "-b", min=1)),
    "size": Opt(str | None, typer.Option("--size")),
    "fmt": Opt(str | None, typer.Option("--format", "-f")),
    "quality": Opt(int, typer.Option()),
    # one flag, for the one change a user asks for (a --metadata/--no-metadata pair widens --help)
    "metadata": Opt(
        bool,
        typer.Option("--no-metadata", help="Write no ICC profile, EXIF or DPI (by default each"
                     " input's are carried to its output)."),
        default=False,
        to_field=lambda no: not no,
    ),
    "device": Opt(str, typer.Option()),
    "precision": Opt(str, typer.Option()),
    "compile": Opt(str, typer.Option()),
    "backend": Opt(str, typer.Option()),
    "overwrite": Opt(bool, typer.Option()),
    "shard": Opt(str | None, typer.Option()),
    "alpha": Opt(str, typer.Option()),
    "null": Opt(bool, typer.Option("--null", "-0")),
    "relative_to": Opt(Path | None, typer.Option(metavar="DIR")),
    "vcodec": Opt(str | None, typer.Option()),
    "crf": Opt(int | None, typer.Option()),
    "stabilize": Opt(bool, typer.Option("--stabilize", help=(
        "Videos: share instance-norm statistics across each shot's frames (less flicker;"
        " torch, eager).")), default=False, to_field=lambda on: STABILIZE_STRENGTH if on else None),
    "stabilize_strength": Opt(float | None, typer.Option(
        "--stabilize-strength", metavar="S", help=f"--stabilize with this strength, 0 <= S < 1"
        f" (default {STABILIZE_STRENGTH}; 0: none)."), default=None, for_job=True),
}
SHOWN = {  # how the records are shown: not part of the job
    **shown("One JSON object per image or video on stdout.", "No progress or summary."),
    "contact_sheet": Opt(Path | None, typer.Option(
        help="Also write a before/after sheet of the first images."), default=None),
}  # fmt: skip


def run(
    job: TranslateJob,
    *,
    as_json: bool,
    quiet: bool,
    contact_sheet: Path | None,
    default_out: bool = False,
) -> None:
    """Translate images into a style: [bold]posterforge translate ./frames -o out -s vintage[/].

    Videos (clip.mp4 -o clip-vintage.mp4) keep their frame rate, time stamps, audio and
    subtitles, and resume after a kill. Prints one output path per image or video on stdout (or
    JSON with --json); progress and errors go to stderr. Exit code 0 when every input succeeded,
    1 when some failed, 2 on a usage error, 130 when interrupted (run it again to resume) and 141
    (SIGPIPE) when stdout is closed early.
    """
    from posterforge import launch
    from posterforge.cli.output import Lines
    from posterforge.cli.run import drive, engine_line
    from posterforge.translation import start

    ranks = launch.from_env(job.shard)
    if ranks is not None:  # torchrun: this process's share, on its own GPU; rank 0 sums up
        job = replace(job, shard=ranks.shard, device=launch.device_for(job.device, ranks))
    if contact_sheet is not None:
        from posterforge.sheet import check_destination

        check_destination(contact_sheet, "--contact-sheet")
    chatty = not quiet and (ranks is None or ranks.main)
    lines = Lines()
    try:
        planned = start(
            job, stdin=sys.stdin, strict=True, notify=lines.err, on_frames=lines.advance_by
        )
    except KeyboardInterrupt as e:
        lines.err("posterforge: interrupted while loading the model; nothing was written")
        raise typer.Exit(exit_code(e)) from None
    if not planned.pairs:  # images were found, but none in this shard
        if not quiet:
            lines.err(f"posterforge: shard {job.shard} holds none of the inputs; nothing to do")
        launch.total(ranks, {})  # the other processes wait for this one's counts
        raise typer.Exit(EXIT_OK)
    assert planned.engine is not None
    if default_out and chatty:  # the first line, once everything is known to work
        lines.err(f"posterforge: writing to {job.out} (no --out given)")
    if chatty:
        lines.err(engine_line(planned.engine, job.device, planned.batch_size))
    report = _Report(lines, as_json, keep=16 if contact_sheet is not None else 0)
    if chatty and sys.stderr.isatty():
        report.show_progress(planned.pairs, planned.videos)
    started_ns, start_s = time.time_ns(), time.perf_counter()

    def interrupted() -> None:
        for rec in _written_unreported(planned.pairs, report.inputs, started_ns):
            report(rec)
        lines.close()
        left = len(planned.pairs) - sum(report.counts.values())
        lines.err(
            f"posterforge: interrupted: {report.summary()}, {left} left; run the "
            "same command again to resume (outputs that exist are skipped)"
        )

    drive(planned.records(), report, interrupted)
    lines.close()
    if contact_sheet is not None and report.kept and (ranks is None or ranks.main):
        _write_sheet(report.kept, contact_sheet, lines)
    own_failures = report.counts[FAILED]
    totals = launch.total(ranks, dict(report.counts))
    if totals is not None and ranks is not None:  # rank 0 reports the whole job
        report.counts = {k: totals.get(k, 0) for k in report.counts}
    if chatty:
        lines.err(report.closing(time.perf_counter() - start_s, planned.engine.compile_note()))
    raise typer.Exit(EXIT_FAILED_INPUTS if own_failures else EXIT_OK)


def _prepare(values: dict) -> dict:
    """--stabilize-strength S means --stabilize with S; then the default --out."""
    if (strength := values.pop("stabilize_strength", None)) is not None:
        values["stabilize"] = strength
    return _default_out(values)


def _default_out(values: dict) -> dict:
    """No --out: the default beside the one input (see ``default_output``), said at once."""
    if values["out"] is not None:
        return {"default_out": False}
    values["out"] = default_output(values["inputs"], values["style"])
    return {"default_out": True}


translate = job_command(
    TranslateJob, OPTIONS, run, extras=SHOWN, left_out=("workers",), prepare=_prepare
)


class _Report:
    """Prints each record: failures on stderr, the path or JSON line on stdout; counts them."""

    def __init__(self, lines: Lines, as_json: bool, keep: int):
        self.lines, self.as_json, self.keep = lines, as_json, keep
        self.counts = {OK: 0, SKIPPED: 0, FAILED: 0}
        self.inputs: set[str] = set()  # inputs reported so far
        self.kept: list[tuple[str, str]] = []  # (input, output) pairs for the contact sheet
        # videos: the frames the progress line expects of each, and what they held
        self.frames_of: dict[str, int] = {}
        self.videos = self.video_frames = 0

    def __call__(self, rec: Record) -> None:
        from posterforge.video.records import VideoRecord

        self.inputs.add(rec.input)
        self.counts[rec.status] += 1
        if rec.status == FAILED:
            self.lines.err(f"{rec.input}: {rec.error}")
        video = isinstance(rec, VideoRecord)
        if video and getattr(rec, "note", None):
            self.lines.err(f"{rec.input}: {rec.note}")
        if self.as_json:
            self.lines.out(json.dumps(rec.as_dict()))
        elif rec.status == OK:
            self.lines.out(str(rec.output))
        if rec.status == OK and rec.output and len(self.kept) < self.keep and not video:
            self.kept.append((rec.input, rec.output))
        if video and rec.status == OK:
            self.videos += 1
            self.video_frames += rec.frames or 0
        bar = self.lines.progress
        if bar is None:
            return
        if not video:
            bar.advance()
        elif expected := self.frames_of.get(rec.input, 0):
            # its frames were counted as the model ran (since the last record); count the rest
            # (a skip, or a high estimate) now
            bar.advance(max(0, self.counted + expected - bar.done))
        self.counted = bar.done

    counted = 0  # the progress count at the last record

    def summary(self) -> str:
        c = self.counts
        return f"translated {c[OK]}, skipped {c[SKIPPED]}, failed {c[FAILED]}"

    def show_progress(self, pairs: list[tuple[Job, Path]], videos: list[tuple[Job, Path]]) -> None:
        """A progress line on the terminal: images count one each, videos their frames."""
        from posterforge.cli.output import ProgressLine

        if not videos:
            self.lines.progress = ProgressLine("translating", len(pairs))
            return
        self.frames_of = _frames_estimates(videos)
        total = len(pairs) - len(videos) + sum(self.frames_of.values())
        self.lines.progress = ProgressLine("translating", total, unit="frames")

    def closing(self, secs: float, note: str | None) -> str:
        """The summary line: counts, time, speed, and the compile note when there is one."""
        rate = self.counts[OK] / secs if secs > 0 else 0.0
        speed = f"{rate:.2f} images/s"
        if self.video_frames:
            frames = self.video_frames + self.counts[OK] - self.videos
            speed = f"{frames} frames, {frames / secs if secs > 0 else 0.0:.2f} frames/s"
        tail = f"; {note}" if note else ""
        return f"{self.summary()} in {secs:.1f} s ({speed}){tail}"


def _frames_estimates(videos: list[tuple[Job, Path]]) -> dict[str, int]:
    from posterforge.video.translate import frames_estimate

    return {str(job.src): frames_estimate(job.src) for job, _ in videos}


def _written_unreported(
    pairs: list[tuple[Job, Path]], reported: set[str], since_ns: int
) -> Iterator[Record]:
    """Records for the outputs written by this run whose record was not printed when Ctrl-C came
    (their encode finished while the interrupt unwound the pipeline)."""
    from posterforge.records import Record

    since = since_ns - 100_000_000  # file times come from a coarser clock than time_ns
    for job, dest in pairs:
        if str(job.src) in reported:
            continue
        try:
            written = dest.stat().st_mtime_ns >= since
        except OSError:
            continue
        if written:
            yield Record(str(job.src), str(dest), OK)


def _write_sheet(pairs: list[tuple[str, str]], dest: Path, lines: Lines) -> None:
    from posterforge.errors import PosterforgeError
    from posterforge.sheet import before_after_sheet

    try:
        before_after_sheet(pairs, dest)
    except (OSError, PosterforgeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        lines.err(f"posterforge: error: --contact-sheet {dest}: cannot write it: {reason}")
        raise typer.Exit(EXIT_FAILED_INPUTS) from None


