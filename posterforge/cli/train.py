"""``posterforge train translator``: a thin layer over :mod:`posterforge.training.run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Train new models (a style for translate, or a generator).", no_args_is_help=True
)


@app.command("translator")
def translator(
    a: Annotated[Path | None, typer.Option("--a", help="Folder of domain A images (from).")] = None,
    b: Annotated[Path | None, typer.Option("--b", help="Folder of domain B images (to).")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Style name to store the result under.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder.")] = None,
    preset: Annotated[str, typer.Option(help="Training recipe under presets/train.")] = "default",
    arch: Annotated[str | None, typer.Option(help="Model family (default: the plugin's).")] = None,
    init_from: Annotated[
        str | None, typer.Option(help="Start both generators from a style or weight file.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Recipe override KEY=VALUE (TOML value); train.KEY for the loop."
        ),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(min=0)] = None,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace stored weights of that name.")] = False,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this folder exactly.")
    ] = None,
) -> None:
    """Train a translator (CycleGAN) from two unpaired folders and store it as a style.

    Example: [bold]posterforge train translator --a spirited/ --b yourname/ --name yourname
    --preset anime --init-from vintage --out runs/yourname[/]. Under [bold]torchrun
    --nproc-per-node N[/] the same command trains with DistributedDataParallel.
    """
    from posterforge.training import run

    if resume is not None:
        path = run.resume(resume, max_steps=max_steps, device=device)
    else:
        missing = [
            f"--{n}" for n, v in (("a", a), ("b", b), ("name", name), ("out", out)) if v is None
        ]
        if missing:
            raise typer.BadParameter(f"missing {', '.join(missing)} (or pass --resume RUN_DIR)")
        assert a and b and name and out
        path = run.train(
            "translator",
            {"a": a, "b": b},
            name,
            out,
            arch=arch,
            preset=preset,
            overrides=set_ or (),
            init_from=init_from,
            max_steps=max_steps,
            seed=seed,
            device=device,
            overwrite=overwrite,
        )
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
