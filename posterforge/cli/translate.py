"""``posterforge translate``: a thin layer over :func:`posterforge.translation.translate_iter`.

stdout carries exactly one line per input (an output path, or a JSON record with ``--json``),
whatever stderr is; progress, notes and errors go to stderr. A closed stdout (``| head``) ends the
run quietly by SIGPIPE (status 141), as shell tools do; Ctrl-C ends it with one line and 130.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from posterforge.cli import EXIT_FAILED_INPUTS, EXIT_OK
from posterforge.cli.signals import EXIT_INTERRUPTED, HoldSigint, closed_pipe, stop

if TYPE_CHECKING:
    from posterforge.cli.output import Lines
    from posterforge.engine import Engine
    from posterforge.inputs import Job
    from posterforge.translation import Record



def translate(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Image or video files, folders (recursive), or - to read paths from stdin."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder (mirrors the input tree), or a video file for one video input.",
        ),
    ],
    style: Annotated[
        str, typer.Option("--style", "-s", help="Style name or a .safetensors weight file.")
    ] = "vintage",
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", "-b", min=1, help="Images per batch (default: 1 on CPU, 8 on GPU)."
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option("--size", help="Resize first: N (shorter side) or WxH, at most 16384."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="png, jpg, webp, bmp, tiff or gif (default: as the input; GIF inputs give PNG).",
        ),
    ] = None,
    quality: Annotated[
        int | None,
        typer.Option(help="JPEG and WebP quality, 1-100 (default 95)."),
    ] = None,
    metadata: Annotated[
        bool,
        typer.Option(
            help="Carry each input's ICC profile, EXIF (orientation reset) and DPI to its output."
        ),
    ] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32, fp16 or bf16 (autocast).")] = "fp32",
    compile: Annotated[
        str, typer.Option(help="auto (compile when the job is long enough to pay), on or off.")
    ] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that exist already.")] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: process a deterministic 1/N of the inputs (torchrun: automatic)."),
    ] = None,
    alpha: Annotated[
        str, typer.Option(help="keep (pass transparency through where the format can) or drop.")
    ] = "keep",
    null: Annotated[
        bool,
        typer.Option("--null", "-0", help="Paths on stdin end in NUL, not newline (find -print0)."),
    ] = False,
    relative_to: Annotated[
        Path | None,
        typer.Option(
            help="Name each output by its input's path below DIR (mirrors absolute paths).",
            metavar="DIR",
        ),
    ] = None,
    vcodec: Annotated[
        str | None,
        typer.Option(help="Video encoder (default libx264; libvpx-vp9 for .webm outputs)."),
    ] = None,
    crf: Annotated[
        int | None,
        typer.Option(help="Video quality: constant rate factor, lower is better (default 18)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per image or video on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
    contact_sheet: Annotated[
        Path | None, typer.Option(help="Also write a before/after sheet of the first images.")
    ] = None,
) -> None:
    """Translate images into a style: [bold]posterforge translate ./frames -o out -s vintage[/].

    Videos (clip.mp4 -o clip-vintage.mp4) keep their frame rate, time stamps, audio and
    subtitles, and resume after a kill. Prints one output path per image or video on stdout (or
    JSON with --json); progress and errors go to stderr. Exit code 0 when every input succeeded,
    1 when some failed, 2 on a usage error, 130 when interrupted (run it again to resume) and 141
    (SIGPIPE) when stdout is closed early.
    """
    from posterforge.cli.output import Lines, ProgressLine
    from posterforge.errors import PosterforgeError
    from posterforge.translation import Size, default_batch_size, load_engine, plan, translate_iter

    # Everything that can be known without the model is checked first, each a one-line error.
    if alpha not in ("keep", "drop"):
        raise PosterforgeError(f"invalid --alpha {alpha!r}: use keep or drop")
    if precision not in ("fp32", "fp16", "bf16"):
        raise PosterforgeError(f"invalid --precision {precision!r}: use fp32, fp16 or bf16")
    if compile not in ("auto", "on", "off"):
        raise PosterforgeError(f"invalid --compile {compile!r}: use auto, on or off")
    if quality is not None and not 1 <= quality <= 100:
        raise PosterforgeError(f"invalid --quality {quality}: use 1 to 100")
    if null and "-" not in inputs:
        raise PosterforgeError("--null reads NUL-separated paths from stdin: give - as an input")
    size_spec = Size.parse(size) if size is not None else None
    if size_spec is not None:
        size_spec.check_memory(batch_size or 1)
    if contact_sheet is not None:
        from posterforge.sheet import check_destination

        check_destination(contact_sheet, "--contact-sheet")
    _check_style(style)  # reads a weight file's header only; a bad style is the first thing to fix
    from posterforge import launch

    ranks = launch.from_env(shard)
    if ranks is not None:  # torchrun: this process's share, on its own GPU; rank 0 sums up
        shard, device = ranks.shard, launch.device_for(device, ranks)
    chatty = not quiet and (ranks is None or ranks.main)
    pairs = plan(
        inputs,
        out,
        fmt=fmt,
        shard=shard,
        stdin=sys.stdin,
        null=null,
        relative_to=relative_to,
        strict=True,
    )
    lines = Lines()
    if not pairs:  # images were found, but none in this shard
        if not quiet:
            lines.err(f"posterforge: shard {shard} holds none of the inputs; nothing to do")
        launch.total(ranks, {})  # the other processes wait for this one's counts
        raise typer.Exit(EXIT_OK)
    videos = [(job, dest) for job, dest in pairs if job.video]
    if videos or vcodec is not None or crf is not None:
        _check_video_codec(vcodec, crf, [dest for _, dest in videos])
    if overwrite or any(not dest.exists() for _, dest in pairs):
        # before the model loads: a read-only --out fails in a second
        _check_writable(out.parent if len(videos) == 1 and pairs[0][1] == out else out)

    try:
        engine = load_engine(style, device=device, precision=precision, compile=compile)
    except KeyboardInterrupt:
        lines.err("posterforge: interrupted while loading the model; nothing was written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    batch = batch_size or default_batch_size(engine.device.type)
    if chatty:
        lines.err(_engine_line(engine, device, batch))
    started_ns = time.time_ns()
    records = translate_iter(
        inputs,
        out,
        style=style,
        batch_size=batch,
        size=size_spec,
        fmt=fmt,
        device=device,
        precision=precision,
        compile=compile,
        overwrite=overwrite,
        alpha=alpha,
        planned=pairs,
        engine=engine,
        quality=quality if quality is not None else 95,
        metadata=metadata,
        notify=lines.err,
        vcodec=vcodec,
        crf=crf,
        on_frames=lines.advance_by,
    )
    report = _Report(lines, as_json, keep=16 if contact_sheet is not None else 0)
    start = time.perf_counter()
    try:
        with HoldSigint() as sigint:
            if chatty and sys.stderr.isatty():
                if videos:  # count frames: an image is one, a video as many as it holds
                    report.frames_of = _frames_estimates(videos)
                    total = len(pairs) - len(videos) + sum(report.frames_of.values())
                    lines.progress = ProgressLine("translating", total, unit="frames")
                else:
                    lines.progress = ProgressLine("translating", len(pairs))
            try:
                for rec in records:
                    with sigint.held():  # a record is reported whole, Ctrl-C or not
                        report(rec)
            except KeyboardInterrupt:
                stop(records)  # the work in flight lands on disk
                for rec in _written_unreported(pairs, report.inputs, started_ns):
                    report(rec)
                lines.close()
                left = len(pairs) - sum(report.counts.values())
                lines.err(
                    f"posterforge: interrupted: {report.summary()}, {left} left; run the "
                    "same command again to resume (outputs that exist are skipped)"
                )
                raise typer.Exit(EXIT_INTERRUPTED) from None
        lines.close()
        if contact_sheet is not None and report.kept and (ranks is None or ranks.main):
            _write_sheet(report.kept, contact_sheet, lines)
        own_failures = report.counts["failed"]
        totals = launch.total(ranks, dict(report.counts))
        if totals is not None and ranks is not None:  # rank 0 reports the whole job
            report.counts = {k: totals.get(k, 0) for k in report.counts}
        if chatty:
            secs = time.perf_counter() - start
            rate = report.counts["ok"] / secs if secs > 0 else 0.0
            note = engine.compile_note()
            speed = f"{rate:.2f} images/s"
            if report.video_frames:
                frames = report.video_frames + report.counts["ok"] - report.videos
                speed = f"{frames} frames, {frames / secs if secs > 0 else 0.0:.2f} frames/s"
            tail = f"; {note}" if note else ""
            lines.err(f"{report.summary()} in {secs:.1f} s ({speed}){tail}")
    except BrokenPipeError:
        stop(records)
        closed_pipe()
    raise typer.Exit(EXIT_FAILED_INPUTS if own_failures else EXIT_OK)


class _Report:
    """Prints each record: failures on stderr, the path or JSON line on stdout; counts them."""

    def __init__(self, lines: Lines, as_json: bool, keep: int):
        self.lines, self.as_json, self.keep = lines, as_json, keep
        self.counts = {"ok": 0, "skipped": 0, "failed": 0}
        self.inputs: set[str] = set()  # inputs reported so far
        self.kept: list[tuple[str, str]] = []  # (input, output) pairs for the contact sheet
        # videos: the frames the progress line expects of each, and what they held
        self.frames_of: dict[str, int] = {}
        self.videos = self.video_frames = 0

    def __call__(self, rec: Record) -> None:
        self.inputs.add(rec.input)
        self.counts[rec.status] += 1
        if rec.status == "failed":
            self.lines.err(f"{rec.input}: {rec.error}")
        video = hasattr(rec, "frames")
        if video and getattr(rec, "note", None):
            self.lines.err(f"{rec.input}: {rec.note}")  # type: ignore[attr-defined]
        if self.as_json:
            self.lines.out(json.dumps(rec.as_dict()))
        elif rec.status == "ok":
            self.lines.out(str(rec.output))
        if rec.status == "ok" and rec.output and len(self.kept) < self.keep and not video:
            self.kept.append((rec.input, rec.output))
        if video and rec.status == "ok":
            self.videos += 1
            self.video_frames += rec.frames or 0  # type: ignore[attr-defined]
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
        return f"translated {c['ok']}, skipped {c['skipped']}, failed {c['failed']}"


def _check_video_codec(vcodec: str | None, crf: int | None, dests: list[Path]) -> None:
    """The encoder each video output uses exists here, takes ``crf`` and fits the container."""
    from posterforge.video.containers import default_vcodec
    from posterforge.video.io import check_codec

    by_codec: dict[str, set[str]] = {}
    for dest in dests:
        by_codec.setdefault(vcodec or default_vcodec(dest), set()).add(dest.suffix)
    if not by_codec:  # --vcodec or --crf without a video: still checked
        by_codec[vcodec or "libx264"] = set()
    for name, suffixes in by_codec.items():
        check_codec(name, crf, suffixes)


def _frames_estimates(videos: list[tuple[Job, Path]]) -> dict[str, int]:
    from posterforge.video.translate import frames_estimate

    return {str(job.src): frames_estimate(job.src) for job, _ in videos}


def _check_style(style: str) -> None:
    from posterforge.catalog import resolve_style
    from posterforge.plugins import get_host
    from posterforge.store import Store

    resolve_style(style, get_host(), Store())


def _engine_line(engine: Engine, device: str, batch: int) -> str:
    """One line: the device and precision the run uses (and whether ``auto`` picked them)."""
    import torch

    about = []
    if engine.device.type == "cuda":
        about.append(torch.cuda.get_device_name(engine.device))
    elif engine.device.type == "cpu":
        about.append(f"{torch.get_num_threads()} threads")
    if device == "auto":
        about.append("picked by --device auto")
    where = f"{engine.device} ({', '.join(about)})" if about else str(engine.device)
    return f"posterforge: device {where}, precision {engine.precision}, batch size {batch}"


def _written_unreported(
    pairs: list[tuple[Job, Path]], reported: set[str], since_ns: int
) -> Iterator[Record]:
    """Records for the outputs written by this run whose record was not printed when Ctrl-C came
    (their encode finished while the interrupt unwound the pipeline)."""
    from posterforge.translation import OK, Record

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


def _check_writable(out: Path) -> None:
    from posterforge.atomic import probe_writable
    from posterforge.errors import PosterforgeError

    try:
        probe_writable(out)
    except OSError as e:
        where = f"{e.filename}: " if e.filename and e.filename != str(out) else ""
        raise PosterforgeError(f"cannot write to {out}: {where}{e.strerror or e}") from None
