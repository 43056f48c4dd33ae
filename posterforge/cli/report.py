"""``posterforge report`` and ``posterforge runs``: thin layers over :func:`posterforge.api.report`
and :func:`posterforge.api.list_runs`; the options are their jobs' fields (and ``--json``)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from posterforge.cli.jobs import Opt, job_command
from posterforge.jobs.report import ReportJob, RunsJob

REPORT_OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "runs": Opt(list[Path], typer.Argument(metavar="RUN"), to_field=tuple),
    "out": Opt(Path, typer.Option("--out", "-o")),
    "overwrite": Opt(bool, typer.Option()),
    "frames": Opt(int, typer.Option(min=1)),
}
RUNS_OPTIONS = {"folder": Opt(Path, typer.Argument(metavar="DIR"))}
RUNS_SHOWN = {
    "as_json": Opt(bool, typer.Option("--json", help="JSON on stdout."), default=False),
}


def run_report(job: ReportJob) -> None:
    """Write one self-contained HTML page about training runs: loss and metric curves (several
    runs overlaid), each run's sample grids on a slider, recipe, provenance, time per step and
    the best checkpoint. It needs no network: open it in any browser. [bold]posterforge report
    runs/a runs/b --out ab.html[/]"""
    from posterforge.run_report import write_report

    print(str(write_report(job)), flush=True)


def run_runs(job: RunsJob, *, as_json: bool) -> None:
    """List the training runs under a folder (default: here; up to three levels down): name,
    family, step of max, status (running, finished, interrupted), best metric and last
    checkpoint. [bold]posterforge runs runs/[/]"""
    from posterforge.api import list_runs
    from posterforge.cli.output import print_json, print_table

    def skipped(line: str) -> None:
        print(f"posterforge: skipped: {line}", file=sys.stderr, flush=True)

    infos = list_runs(job.folder, on_skip=skipped)
    if as_json:
        print_json([i.as_dict() for i in infos])
        return
    rows = [
        (
            _relative(i.path, job.folder),
            i.family,
            f"{i.step}/{i.max_steps if i.max_steps is not None else '?'}",
            i.status,
            i.best_text(),
            i.last_checkpoint.name if i.last_checkpoint else "",
        )
        for i in infos
    ]
    columns = ("run", "family", "step", "status", "best", "last checkpoint")
    print_table(f"Runs under {job.folder}", columns, rows)


report = job_command(ReportJob, REPORT_OPTIONS, run_report)
report.__name__ = "report"
runs = job_command(RunsJob, RUNS_OPTIONS, run_runs, extras=RUNS_SHOWN)
runs.__name__ = "runs"


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder)) if path != folder else str(path)
    except ValueError:
        return str(path)
