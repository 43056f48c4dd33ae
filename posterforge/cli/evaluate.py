"""``posterforge eval``: a thin layer over :func:`posterforge.evaluation.evaluate_model`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def evaluate(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Generator name or a .safetensors file.")
    ] = "posters-demo",
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Real images: a folder (or one sub-folder per label)."),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CSV or JSONL labels of the real images.")
    ] = None,
    n: Annotated[int, typer.Option("-n", min=1, help="Images to generate (over all labels).")] = (
        1000
    ),
    max_real: Annotated[
        int | None, typer.Option(help="Use at most this many real images (the first ones).")
    ] = None,
    inception_weights: Annotated[
        Path | None,
        typer.Option(help="A local torchvision inception_v3 state dict, for standard FID."),
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record on stdout.")] = False,
) -> None:
    """Measure a generator offline: FID, KID, precision and recall against real images, overall
    and per label, and how often a small classifier trained on the real images recognises the
    label asked for. [bold]posterforge eval --model posters-demo --data posters/ --labels
    labels.csv[/]. Every number names the feature extractor it was measured with."""
    from posterforge.cli.output import ProgressLine
    from posterforge.errors import PosterforgeError
    from posterforge.evaluation import evaluate_model

    if data is None:
        raise PosterforgeError("name the real images with --data DIR")
    bar = ProgressLine("eval", 1) if sys.stderr.isatty() else None

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.done = done - 1
            bar.advance()

    report = evaluate_model(
        model,
        data,
        labels=labels,
        n=n,
        device=device,
        inception_weights=inception_weights,
        seed=seed,
        max_real=max_real,
        progress=progress,
    )
    if bar is not None:
        bar.clear()
    record = {"model": model, **report.as_dict()}
    if as_json:
        print(json.dumps(record), flush=True)
        return
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
            print(
                f"{name:<{width}}  {g.fid:9.3f}  {g.kid_mean:9.5f}  {g.n_real:4d}  {g.n_fake:9d}"
            )
