"""``posterforge project`` and ``posterforge mix``: options into a
:class:`~posterforge.jobs.project.ProjectJob` / :class:`~posterforge.jobs.mix.MixJob`, run by
:mod:`posterforge.projection` / :mod:`posterforge.mixing` (what ``posterforge.project`` and
``posterforge.mix`` call), records rendered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from posterforge.cli.jobs import Opt, job_command, shown
from posterforge.jobs.generate import parse_seeds
from posterforge.jobs.mix import MixJob
from posterforge.jobs.project import ProjectJob, split_labels

OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "posters": Opt(list[Path], typer.Argument(metavar="POSTER..."), to_field=tuple),
    "out": Opt(Path, typer.Option("--out", "-o")),
    "model": Opt(str, typer.Option("--model", "-m")),
    "genre": Opt(str | None, typer.Option("--genre", "--label", "-g")),
    "as_labels": Opt(str | None, typer.Option("--as", metavar="LABELS"), default=None,
                     to_field=split_labels),
    "steps": Opt(int, typer.Option()),
    "lr": Opt(float, typer.Option()),
    "seed": Opt(int, typer.Option()),
    "fit": Opt(str, typer.Option()),
    "feature_weight": Opt(float, typer.Option("--feature-weight")),
    "features": Opt(str | None, typer.Option(metavar="NAME")),
    "device": Opt(str, typer.Option()),
    "overwrite": Opt(bool, typer.Option()),
}  # fmt: skip
# how the records are shown: not part of the job
SHOWN = shown("One JSON object per poster on stdout.", "No progress or summary on stderr.")


def run(job: ProjectJob, *, as_json: bool, quiet: bool) -> None:
    """Find the latent of real posters: [bold]posterforge project poster.jpg -m
    posters-stylegan -o projected --as horror,comedy[/].

    Writes STEM.png (the reconstruction), STEM.npz (the latent, for generate --from-latent)
    and STEM.json (the losses; without --genre, the ranking of the labels). Prints one
    reconstruction path per poster on stdout (or JSON with --json).
    """
    from posterforge.cli.output import Lines, ProgressLine
    from posterforge.cli.run import drive
    from posterforge.projection import start

    planned = start(job)
    total = planned.total_steps
    tty = sys.stderr.isatty()
    bar = ProgressLine("project", total, unit="step") if tty and not quiet else None
    lines = Lines(bar)

    def report(rec) -> None:
        lines.out(json.dumps(rec.as_dict()) if as_json else rec.reconstruction)
        if not quiet:
            loss = ", ".join(f"{k} {v:.4f}" for k, v in rec.losses.items())
            label = f" as {rec.label}" if rec.label else ""
            lines.err(f"{rec.poster}{label}: {rec.status} ({loss})")

    def interrupted() -> None:
        lines.close()
        lines.err("posterforge: interrupted; run the same command again to resume (posters "
                  "projected already are skipped)")  # fmt: skip

    drive(planned.records(lines.advance_by), report, interrupted)
    lines.close()


project = job_command(ProjectJob, OPTIONS, run, extras=SHOWN)


MIX_OPTIONS = {
    "rows": Opt(str, typer.Option(metavar="SEEDS"), to_field=parse_seeds),
    "cols": Opt(str, typer.Option(metavar="SEEDS"), to_field=parse_seeds),
    "out": Opt(Path, typer.Option("--out", "-o")),
    "model": Opt(str, typer.Option("--model", "-m")),
    "layers": Opt(str, typer.Option(metavar="coarse|middle|fine|A-B")),
    "genre": Opt(str | None, typer.Option("--genre", "--label", "-g")),
    "truncation": Opt(float | None, typer.Option()),
    "device": Opt(str, typer.Option()),
    "overwrite": Opt(bool, typer.Option()),
}  # fmt: skip


def mix_run(job: MixJob) -> None:
    """A style mixing grid: [bold]posterforge mix -m posters-stylegan --rows 1-4 --cols 5-8
    -g horror -o mix.png[/].

    Cell (row, column) keeps the row seed's styles except on --layers, taken from the column
    seed's. Prints the grid's path.
    """
    from posterforge.mixing import mix

    grid = mix(job)
    first, last = grid.layers
    print(grid.path)
    print(f"mixed style layers {first}-{last} into {len(job.rows)}x{len(job.cols)} cells",
          file=sys.stderr)  # fmt: skip


mix = job_command(MixJob, MIX_OPTIONS, mix_run)
