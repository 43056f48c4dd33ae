"""``posterforge eval``: a thin layer over :func:`posterforge.api.evaluate`.

The options are :class:`~posterforge.jobs.evaluate.EvalJob`'s fields (and ``--json``): the
command hands them to the API as they are and renders the report it gets back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from posterforge.cli.jobs import Opt, job_command, shown
from posterforge.jobs.evaluate import EvalJob
from posterforge.jobs.labelled import FIELDS as READING

if TYPE_CHECKING:
    from posterforge.evaluation.evaluator import EvalReport

OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "model": Opt(str, typer.Option("--model", "-m")),
    "data": Opt(Path | None, typer.Option("--data")),
    "labels": Opt(Path | None, typer.Option("--labels")),
    # the labels file's columns, template and encoding: the same options as train generator's
    **{f.name: Opt(str, typer.Option("--" + f.name.replace("_", "-"))) for f in READING},
    "n": Opt(int, typer.Option("-n", min=1)),
    "only": Opt(list[str] | None, typer.Option("--label", "-g", metavar="LABELS"), default=None,
                to_field=tuple),
    "max_real": Opt(int | None, typer.Option()),
    "inception_weights": Opt(Path | None, typer.Option()),
    "data_report": Opt(Path, typer.Option()),
    "a": Opt(Path | None, typer.Option("--a")),
    "b": Opt(Path | None, typer.Option("--b")),
    "reverse": Opt(str | None, typer.Option("--reverse")),
    "size": Opt(int, typer.Option("--size")),
    "seed": Opt(int, typer.Option()),
    "device": Opt(str, typer.Option()),
    "batch_size": Opt(int, typer.Option("--batch-size", "-b", min=1)),
}  # fmt: skip
# how the records are shown: not part of the job
SHOWN = shown("One JSON record on stdout.")


def run(job: EvalJob, *, as_json: bool) -> None:
    """Measure a generator offline: FID, KID, precision and recall against real images, overall
    and per label, and how often a small classifier trained on the real images recognises the
    label asked for. [bold]posterforge eval --model posters-demo --data posters/ --labels
    labels.csv[/] (a MovieGenre.csv as it is: [bold]--labels MovieGenre.csv --encoding latin-1
    --path-template '{imdbId}.jpg' --label-column Genre[/]). A translator:
    [bold]posterforge eval --model vintage --a photos/ --b vintage/[/] (FID of its A->B
    images against B; with [bold]--reverse[/] its B->A model: both ways and the cycle errors).
    Every number names the feature extractor it was measured with."""
    from posterforge.cli.output import count_progress
    from posterforge.context import default_context
    from posterforge.evaluation.model import evaluate_model

    if job.translator:
        _translator(job, as_json=as_json)
        return

    with count_progress("eval") as progress:
        report = evaluate_model(job, default_context(), progress)
    note = report.skipped_note()
    if note is not None:
        print(note, file=sys.stderr, flush=True)
    if as_json:
        print(json.dumps({"model": job.model, **report.as_dict()}), flush=True)
    else:
        _print_report(job.model, report)


evaluate = job_command(EvalJob, OPTIONS, run, extras=SHOWN)
evaluate.__name__ = "evaluate"


def _translator(job: EvalJob, *, as_json: bool) -> None:
    from posterforge.context import default_context
    from posterforge.evaluation.translators import evaluate_translator

    record = evaluate_translator(job, default_context())
    if as_json:
        print(json.dumps(record), flush=True)
        return
    x, both = record["extractor"], job.reverse is not None
    print(f"translator {job.model}{f' and {job.reverse}' if both else ''}: {record['n_a']} A "
          f"and {record['n_b']} B images at {job.size}x{job.size}")  # fmt: skip
    print(f"features: {x} (not comparable with published Inception FIDs unless it says inception)")
    for key, value in record["values"].items():
        print(f"{key} [{x}] {value:10.4f}")


def _print_report(model: str, report: EvalReport) -> None:
    x = report.extractor
    print(f"model {model}: {report.n_fake} generated against {report.n_real} real images")
    print(f"features: {x} (not comparable with published Inception FIDs unless it says inception)")
    print(f"FID [{x}]       {report.fid:10.3f}")
    print(f"KID [{x}]       {report.kid_mean:10.5f} +- {report.kid_std:.5f}")
    print(f"precision [{x}] {report.precision:10.3f}   (k={report.k})")
    print(f"recall [{x}]    {report.recall:10.3f}")
    if report.label_consistency is not None:
        print(
            f"label consistency [{x}] {report.label_consistency:.3f} "
            f"(the classifier on held-out real images: {report.classifier_accuracy:.3f})"
        )
    if report.per_label:
        width = max(len(k) for k in report.per_label)
        print(f"{'label':<{width}}  {'FID':>9}  {'KID':>9}  real  generated")
        for name, g in report.per_label.items():
            print(f"{name:<{width}}  {g.fid:9.3f}  {g.kid_mean:9.5f}  {g.n_real:4d}  {g.n_fake:9d}")
