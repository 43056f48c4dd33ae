"""``posterforge eval``: a thin layer over :func:`posterforge.api.evaluate`.

The options are :class:`~posterforge.jobs.evaluate.EvalJob`'s fields (and ``--json``): the
command hands them to the API as they are and renders the report it gets back.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from posterforge.evaluation.evaluator import EvalReport

_OPTIONS: list[tuple[str, Any, Any, Any]] = [  # (field, type, default, option)
    ("model", str, "posters-demo",
     typer.Option("--model", "-m", help="Generator name or a .safetensors file.")),
    ("data", Path | None, None,
     typer.Option("--data", help="Real images: a folder (or one sub-folder per label).")),
    ("labels", Path | None, None,
     typer.Option("--labels", help="CSV or JSONL labels of the real images.")),
    ("n", int, 1000, typer.Option("-n", min=1, help="Images to generate (over all labels).")),
    ("max_real", int | None, None,
     typer.Option(help="Use at most this many real images (the first ones).")),
    ("inception_weights", Path | None, None,
     typer.Option(help="A local torchvision inception_v3 state dict, for standard FID.")),
    ("seed", int, 0, typer.Option()),
    ("device", str, "auto", typer.Option(help="auto, cpu, cuda, cuda:N or mps.")),
    ("as_json", bool, False, typer.Option("--json", help="One JSON record on stdout.")),
]  # fmt: skip


def evaluate(**kw: Any) -> None:
    """Measure a generator offline: FID, KID, precision and recall against real images, overall
    and per label, and how often a small classifier trained on the real images recognises the
    label asked for. [bold]posterforge eval --model posters-demo --data posters/ --labels
    labels.csv[/]. Every number names the feature extractor it was measured with."""
    from posterforge import api
    from posterforge.cli.output import count_progress

    as_json, model, data = kw.pop("as_json"), kw.pop("model"), kw.pop("data")
    with count_progress("eval") as progress:
        report = api.evaluate(model, data, progress=progress, **kw)
    if as_json:
        print(json.dumps({"model": model, **report.as_dict()}), flush=True)
    else:
        _print_report(model, report)


evaluate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=Annotated[t, o])
        for n, t, d, o in _OPTIONS
    ]
)


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
