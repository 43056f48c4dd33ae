"""``posterforge train translator``: a thin layer over :mod:`posterforge.training.run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Train new models (a style for translate, or a generator).", no_args_is_help=True
)


# options shared by the train commands
PRESET = typer.Option(help="Training recipe under presets/train (default: the family's).")
SET = typer.Option("--set", help="Recipe override KEY=VALUE (TOML value); train.KEY for the loop.")
MAX_STEPS = typer.Option(min=0)
DEVICE = typer.Option(help="auto, cpu, cuda, cuda:N.")
OVERWRITE = typer.Option(help="Replace stored weights of that name.")
RESUME = typer.Option(help="Continue the run in this folder exactly.")


@app.command("translator")
def translator(
    a: Annotated[Path | None, typer.Option("--a", help="Folder of domain A images (from).")] = None,
    b: Annotated[Path | None, typer.Option("--b", help="Folder of domain B images (to).")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Style name to store the result under.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder.")] = None,
    preset: Annotated[str | None, PRESET] = None,
    arch: Annotated[str | None, typer.Option(help="Model family (default: the plugin's).")] = None,
    init_from: Annotated[
        str | None, typer.Option(help="Start both generators from a style or weight file.")
    ] = None,
    set_: Annotated[list[str] | None, SET] = None,
    max_steps: Annotated[int | None, MAX_STEPS] = None,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, DEVICE] = "auto",
    overwrite: Annotated[bool, OVERWRITE] = False,
    resume: Annotated[Path | None, RESUME] = None,
) -> None:
    """Train a translator (CycleGAN) from two unpaired folders and store it as a style.

    Example: [bold]posterforge train translator --a spirited/ --b yourname/ --name yourname
    --preset anime --init-from vintage --out runs/yourname[/]. Under [bold]torchrun
    --nproc-per-node N[/] the same command trains with DistributedDataParallel.
    """
    _train_or_resume(
        "translator",
        {"a": a, "b": b},
        name,
        out,
        resume,
        arch=arch,
        preset=preset,
        overrides=set_ or (),
        init_from=init_from,
        max_steps=max_steps,
        seed=seed,
        device=device,
        overwrite=overwrite,
    )


@app.command("generator")
def generator(
    data: Annotated[
        Path | None, typer.Option("--data", help="Folder of posters (or genre sub-folders).")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="CSV or JSONL: path, genres separated by |."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name to store the result under.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder.")] = None,
    arch: Annotated[
        str | None, typer.Option(help="Model family, e.g. genre-cgan (default: the first).")
    ] = None,
    balance: Annotated[
        str | None, typer.Option(help="Genre balancing: cap, resample or none (recipe's).")
    ] = None,
    preset: Annotated[str | None, PRESET] = None,
    set_: Annotated[list[str] | None, SET] = None,
    max_steps: Annotated[int | None, MAX_STEPS] = None,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, DEVICE] = "auto",
    overwrite: Annotated[bool, OVERWRITE] = False,
    resume: Annotated[Path | None, RESUME] = None,
) -> None:
    """Train a poster generator from a labelled folder and store it for [bold]generate[/].

    Example: [bold]posterforge train generator --data posters/ --labels labels.csv --name mine
    --out runs/mine[/]. Per-genre counts (found and used after balancing) and unusable label
    rows (with line numbers) are printed before training starts.
    """
    overrides = [*(set_ or ()), *([f'balance="{balance}"'] if balance else [])]
    _train_or_resume(
        "generator",
        {"data": data, "labels": labels},
        name,
        out,
        resume,
        optional=("labels",),
        arch=arch,
        preset=preset,
        overrides=overrides,
        max_steps=max_steps,
        seed=seed,
        device=device,
        overwrite=overwrite,
    )


def _train_or_resume(
    kind: str,
    data: dict[str, Path | None],
    name: str | None,
    out: Path | None,
    resume: Path | None,
    *,
    optional: tuple[str, ...] = (),
    **options: Any,
) -> None:
    """``--resume RUN_DIR``, or a new run that needs every input but the ``optional`` ones."""
    from posterforge.training import run

    if resume is not None:
        path = run.resume(resume, max_steps=options["max_steps"], device=options["device"])
    else:
        given = {**{k: v for k, v in data.items() if k not in optional}, "name": name, "out": out}
        missing = [f"--{k}" for k, v in given.items() if v is None]
        if missing:
            raise typer.BadParameter(f"missing {', '.join(missing)} (or pass --resume RUN_DIR)")
        inputs = {k: v for k, v in data.items() if v is not None}
        path = run.train(kind, inputs, name, out, **options)  # type: ignore[arg-type]
    if path is not None:
        typer.echo(str(path))


@app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by train.")],
    name: Annotated[str, typer.Option("--name", help="Name to store the model under.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint step (default: the newest).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace stored weights of that name.")] = False,
) -> None:
    """Store the model of a run's checkpoint (e.g. an earlier, better-looking step) as a style."""
    from posterforge.training import run

    typer.echo(str(run.export(run_dir, name, step=step, overwrite=overwrite)))
