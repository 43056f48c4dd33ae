"""``posterforge translate``: a thin layer over :func:`posterforge.translation.translate_iter`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from posterforge.cli import EXIT_FAILED_INPUTS, EXIT_OK


def translate(
    inputs: Annotated[
        list[str],
        typer.Argument(help="Image files, folders (recursive), or - to read paths from stdin."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder; mirrors the input tree.")
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
        str | None, typer.Option("--size", help="Resize first: N (shorter side) or WxH.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="png, jpg, webp, bmp or tiff (default: as the input)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32, fp16 or bf16 (autocast).")] = "fp32",
    compile: Annotated[
        str, typer.Option(help="auto (compile shapes that run long), on or off.")
    ] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that exist already.")] = False,
    shard: Annotated[
        str | None, typer.Option(help="K/N: process a deterministic 1/N of the inputs.")
    ] = None,
    alpha: Annotated[
        str, typer.Option(help="keep (pass transparency through where the format can) or drop.")
    ] = "keep",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per image on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
    contact_sheet: Annotated[
        Path | None, typer.Option(help="Also write a before/after sheet of the first images.")
    ] = None,
) -> None:
    """Translate images into a style: [bold]posterforge translate ./frames -o out -s vintage[/].

    Prints one output path per image on stdout (or JSON with --json); progress and errors go to
    stderr. Exit code 0 when every input succeeded, 1 when some failed, 2 on a usage error.
    """
    from posterforge.translation import FAILED, OK, SKIPPED, plan, translate_iter

    pairs = plan(inputs, out, fmt=fmt, shard=shard, stdin=sys.stdin)
    records = translate_iter(
        inputs,
        out,
        style=style,
        batch_size=batch_size,
        size=size,
        fmt=fmt,
        device=device,
        precision=precision,
        compile=compile,
        overwrite=overwrite,
        alpha=alpha,
        planned=pairs,
    )
    counts = {OK: 0, SKIPPED: 0, FAILED: 0}
    done: list[tuple[str, str]] = []
    start = time.perf_counter()
    with _progress(len(pairs), enabled=not quiet and sys.stderr.isatty()) as advance:
        for rec in records:
            counts[rec.status] += 1
            if rec.status == FAILED:
                print(f"{rec.input}: {rec.error}", file=sys.stderr)
            if as_json:
                print(json.dumps(rec.as_dict()), flush=True)
            elif rec.status == OK:
                print(rec.output, flush=True)
            if rec.status == OK and rec.output and contact_sheet and len(done) < 16:
                done.append((rec.input, rec.output))
            advance()
    if not pairs and not quiet:  # after the loop: a bad style is reported first
        print("posterforge: no images found in the inputs", file=sys.stderr)
    if contact_sheet is not None and done:
        from posterforge.sheet import before_after_sheet

        before_after_sheet(done, contact_sheet)
    if not quiet:
        secs = time.perf_counter() - start
        rate = counts[OK] / secs if secs > 0 else 0.0
        print(
            f"translated {counts[OK]}, skipped {counts[SKIPPED]}, failed {counts[FAILED]} "
            f"in {secs:.1f} s ({rate:.2f} images/s)",
            file=sys.stderr,
        )
    raise typer.Exit(EXIT_FAILED_INPUTS if counts[FAILED] else EXIT_OK)


class _progress:
    """A rich progress bar on stderr (images/s and ETA), or nothing when not on a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task):
                return Text(f"{task.speed or 0:.2f} img/s")

        self.bar = Progress(
            "translating",
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task("translate", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
