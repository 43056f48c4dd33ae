"""``posterforge generate``: a thin layer over :func:`posterforge.generation.generate_iter`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from posterforge.cli import EXIT_OK


def generate(
    genre: Annotated[
        list[str] | None,
        typer.Option(
            "--genre",
            "--label",
            "-g",
            help="What to generate, for a conditional model: a label name (a genre for the "
            "poster models); repeat for several; a mix: horror+comedy or horror:0.7+comedy:0.3. "
            "Leave out for an unconditional model.",
        ),
    ] = None,
    n: Annotated[int, typer.Option("-n", min=0, help="Images per genre (or in all).")] = 16,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (GENRE-00000.png, or 00000.png, ...)."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Generator name or a .safetensors file.")
    ] = "posters-demo",
    seed: Annotated[int, typer.Option(help="Same seed, same posters (on the same device).")] = 0,
    truncation: Annotated[
        float | None,
        typer.Option(
            help="PSI > 0: more typical, less varied images (the model's own truncation, or "
            "noise redrawn beyond +-PSI)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 64,
    grid: Annotated[
        Path | None,
        typer.Option(help="Also write a contact sheet, captioned by genre (64 per genre at most)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="png, jpg or webp.")] = "png",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32, fp16 or bf16 (autocast).")] = "fp32",
    overwrite: Annotated[bool, typer.Option(help="Replace posters that exist already.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per poster on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")] = False,
) -> None:
    """Generate new images: [bold]posterforge generate --genre horror -n 64 -o out[/].

    Works with any generator model (see [bold]posterforge generators[/]); an unconditional one
    needs no --genre. Prints one path per image on stdout (or JSON with --json); the summary goes
    to stderr. Images that exist already are skipped, so an interrupted run picks up where it
    stopped.
    """
    from posterforge.cli.output import Lines, ProgressLine
    from posterforge.cli.translate import _engine_line
    from posterforge.generation import OK, LoadedGenerator, generate_iter

    written = skipped = 0
    start = time.perf_counter()
    def started(gen: LoadedGenerator) -> None:  # the options are checked, the model loaded
        if not quiet:
            lines.err(_engine_line(gen.engine, device, batch_size))

    total = n * max(1, len(genre or [])) if out is not None else 0
    bar = ProgressLine("generate", total) if total and not quiet and sys.stderr.isatty() else None
    lines = Lines(bar)
    for poster in generate_iter(
        genre or None,
        n,
        out,
        model=model,
        seed=seed,
        truncation=truncation,
        batch_size=batch_size,
        fmt=fmt,
        overwrite=overwrite,
        grid=grid,
        device=device,
        precision=precision,
        on_start=started,
    ):
        if poster.status == OK:
            written += 1
        else:
            skipped += 1
        if as_json:
            lines.out(json.dumps(poster.as_dict()))
        elif poster.path is not None and poster.status == OK:
            lines.out(poster.path)
        lines.advance()
    lines.close()
    if not quiet:
        secs = time.perf_counter() - start
        rate = written / secs if secs > 0 else 0.0
        extra = f", grid {grid}" if grid is not None else ""
        print(
            f"generated {written}, skipped {skipped} in {secs:.1f} s ({rate:.1f} posters/s){extra}",
            file=sys.stderr,
        )
    raise typer.Exit(EXIT_OK)
