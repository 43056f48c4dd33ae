"""``posterforge generate``: options into a :class:`~posterforge.jobs.generate.GenerateJob`, run by
:func:`posterforge.generation.start` (what ``posterforge.generate`` calls), records rendered."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from posterforge.cli.exits import EXIT_OK
from posterforge.cli.jobs import Opt, job_command, shown
from posterforge.jobs.generate import GenerateJob
from posterforge.records import OK

if TYPE_CHECKING:
    from posterforge.cli.output import Lines
    from posterforge.generation import GenerateRun, Poster


OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "conditions": Opt(list[str] | None, typer.Option("--genre", "--label", "-g"), default=None,
                      to_field=tuple),
    "n": Opt(int, typer.Option("-n", min=0)),
    "out": Opt(Path | None, typer.Option("--out", "-o", help=(
        "Output folder (GENRE-00000.png, or 00000.png, ...); default: posters/ here, unless "
        "only --grid is asked for."))),
    "model": Opt(str, typer.Option("--model", "-m")),
    "seed": Opt(int, typer.Option()),
    "seeds": Opt(str | None, typer.Option(metavar="LIST")),
    "truncation": Opt(float | None, typer.Option()),
    "batch_size": Opt(int, typer.Option("--batch-size", "-b", min=1)),
    "grid": Opt(Path | None, typer.Option()),
    "fmt": Opt(str, typer.Option("--format", "-f")),
    "device": Opt(str, typer.Option()),
    "precision": Opt(str, typer.Option()),
    "backend": Opt(str, typer.Option()),
    "overwrite": Opt(bool, typer.Option()),
    "shard": Opt(str | None, typer.Option()),
    "from_latent": Opt(Path | None, typer.Option("--from-latent", metavar="NPZ")),
}  # fmt: skip
# how the records are shown: not part of the job
SHOWN = shown("One JSON object per poster on stdout.", "No summary on stderr.")


DEFAULT_OUT = Path("posters")


def run(job: GenerateJob, *, as_json: bool, quiet: bool, default_out: bool = False) -> None:
    """Generate new images: [bold]posterforge generate --genre horror -n 64 -o out[/].

    Works with any generator model (see [bold]posterforge generators[/]); an unconditional one
    needs no --genre. Prints one path per image on stdout (or JSON with --json); the summary goes
    to stderr. Images that exist already are skipped, so an interrupted run picks up where it
    stopped.
    """
    from posterforge import launch
    from posterforge.cli.output import Lines, ProgressLine
    from posterforge.cli.run import drive, engine_line
    from posterforge.generation import start

    ranks = launch.from_env(job.shard)
    if ranks is not None:  # torchrun: this process's share, on its own GPU; one grid, one summary
        device = launch.device_for(job.device, ranks)
        job = replace(job, shard=ranks.shard, device=device, grid=job.grid if ranks.main else None)
        quiet = quiet or not ranks.main
    if job.from_latent is not None:
        from posterforge.rerender import start_from_latent

        planned = start_from_latent(job)
    else:
        planned = start(job)
    if default_out and not quiet:  # the first line, once the model and genres are known good
        print(f"posterforge: writing to {job.out}/ (no --out given)", file=sys.stderr)
    total = job.n * max(1, len(job.conditions)) if job.out is not None else 0
    bar = ProgressLine("generate", total) if total and not quiet and sys.stderr.isatty() else None
    lines = Lines(bar)
    if not quiet:
        lines.err(engine_line(planned.generator.engine, job.device, job.batch_size))
    report = _Report(lines, as_json)
    started_ns, start_s = time.time_ns(), time.perf_counter()

    def interrupted() -> None:
        if job.out is not None:
            for poster in _written_unreported(planned, report.reported, started_ns):
                report(poster)
        lines.close()
        lines.err(
            f"posterforge: interrupted: generated {report.written}, skipped {report.skipped}; "
            "run the same command again to resume (posters that exist are skipped)"
        )

    drive(planned.records(), report, interrupted)
    lines.close()
    counts = launch.total(ranks, {"written": report.written, "skipped": report.skipped})
    if counts is not None and not quiet:
        secs = time.perf_counter() - start_s
        rate = counts["written"] / secs if secs > 0 else 0.0
        extra = f", grid {job.grid}" if job.grid is not None else ""
        if note := planned.generator.engine.compile_note():
            extra += f"; {note}"
        lines.err(
            f"generated {counts['written']}, skipped {counts['skipped']} in {secs:.1f} s "
            f"({rate:.1f} posters/s){extra}"
        )
    raise typer.Exit(EXIT_OK)


def _default_out(values: dict) -> dict:
    """Neither --out nor --grid: the posters go to ./posters/, said at once."""
    if values["out"] is not None or values["grid"] is not None:
        return {"default_out": False}
    values["out"] = DEFAULT_OUT
    return {"default_out": True}


generate = job_command(
    GenerateJob, OPTIONS, run, extras=SHOWN, left_out=("grid_max", "compile"),
    prepare=_default_out,
)  # fmt: skip


class _Report:
    """Prints each poster: its path (or JSON line) on stdout; counts them."""

    def __init__(self, lines: Lines, as_json: bool):
        self.lines, self.as_json = lines, as_json
        self.written = self.skipped = 0
        self.reported: set[str] = set()

    def __call__(self, poster: Poster) -> None:
        if poster.status == OK:
            self.written += 1
        else:
            self.skipped += 1
        if poster.path is not None:
            self.reported.add(poster.path)
        if self.as_json:
            self.lines.out(json.dumps(poster.as_dict()))
        elif poster.path is not None and poster.status == OK:
            self.lines.out(poster.path)
        self.lines.advance()


def _written_unreported(run: GenerateRun, reported: set[str], since_ns: int) -> Iterator[Poster]:
    """Records for the posters this run wrote whose record was not printed when Ctrl-C came."""
    from posterforge.generation import Poster

    since = since_ns - 100_000_000  # file times come from a coarser clock than time_ns
    for cond in run.conditions:
        for i in range(run.job.n):
            dest = cond.dest(i)
            try:
                fresh = dest is not None and dest.stat().st_mtime_ns >= since
            except OSError:
                continue
            if fresh and str(dest) not in reported:
                yield Poster(str(dest), cond.caption, i, run.job.address(i)[0], OK)
