"""``posterforge train translator|generator|export``: a thin layer over
:func:`posterforge.api.train` and :mod:`posterforge.training.run` (``resume``, ``export``).

The ``translator`` and ``generator`` commands are built from the families that plugins register:
each declared input becomes ``--NAME PATH`` and each declared recipe option ``--KEY VALUE``, so a
new family brings its own options without a core change.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from posterforge.errors import PosterforgeError
from posterforge.records import Kind

if TYPE_CHECKING:
    from posterforge.family import Family
    from posterforge.plugins import PluginHost

app = typer.Typer(
    help="Train new models (a style for translate, or a generator).", no_args_is_help=True
)

KINDS = tuple(Kind)
WHAT = {Kind.TRANSLATOR: "a translator (a style for translate)", Kind.GENERATOR: "a generator"}


def _common(kind: str, families: list[Family]) -> list[inspect.Parameter]:
    """The options every train command has, after the families' own."""
    names = ", ".join(f.name for f in families)
    stored = "Style name" if kind == Kind.TRANSLATOR else "Model name"
    spec = [
        ("name", str | None, typer.Option("--name", help=f"{stored} to store the result under.")),
        ("out", Path | None, typer.Option("--out", "-o", help="Run folder.")),
        (
            "arch",
            str | None,
            typer.Option(help=f"Model family: {names} (default: {names.split(',')[0]})."),
        ),
        (
            "preset",
            str | None,
            typer.Option(help="The family's training recipe (default: its own)."),
        ),
        (
            "init_from",
            str | None,
            typer.Option(help="Start from a model's weights (a name or file)."),
        ),
        (
            "set_",
            list[str] | None,
            typer.Option(
                "--set", help="Recipe override KEY=VALUE (TOML value); train.KEY for the loop."
            ),
        ),
        ("max_steps", int | None, typer.Option(min=0)),
        ("seed", int, typer.Option()),
        ("device", str, typer.Option(help="auto, cpu, cuda, cuda:N.")),
        (
            "overwrite",
            bool,
            typer.Option("--overwrite", help="Replace stored weights of that name."),
        ),
        ("resume", Path | None, typer.Option(help="Continue the run in this folder exactly.")),
    ]
    defaults = {"seed": 0, "device": "auto", "overwrite": False}
    return [
        inspect.Parameter(
            n, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(n), annotation=Annotated[t, o]
        )
        for n, t, o in spec
    ]


def _declared(families: Iterable[Family], attr: str) -> dict[str, tuple[Any, list[str]]]:
    """Inputs (or options) by name, with the families that declare each."""
    out: dict[str, tuple[Any, list[str]]] = {}
    for family in families:
        for item in getattr(family, attr):
            key = item.name if attr == "inputs" else item.key
            out.setdefault(key, (item, []))[1].append(family.name)
    return out


def _params(declared: dict[str, tuple[Any, list[str]]], several: bool) -> list[inspect.Parameter]:
    """``--NAME PATH`` for each declared input, ``--KEY VALUE`` (or a switch) for each option."""
    params = []
    for key, (spec, owners) in declared.items():
        whose = f" (for {', '.join(owners)})" if several else ""  # when several could take it
        if hasattr(spec, "kind"):  # an Input
            opt = typer.Option(spec.flag, help=f"{spec.help}{whose}", metavar=spec.kind.upper())
            annotation: Any = Annotated[Path | None, opt]
            default: Any = None
        else:
            choices = f" ({' | '.join(spec.choices)})" if spec.choices else ""
            opt = typer.Option(spec.flag, help=f"{spec.help}{choices}{whose}")
            annotation = Annotated[bool if spec.switch else str | None, opt]
            default = False if spec.switch else None
        params.append(
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return params


def _help(kind: str, families: list[Family]) -> str:
    lines = [f"Train {WHAT[kind]} and store it under --name."]
    for f in families:
        lines.append(f"[bold]{f.name}[/]: {f.description}.")
        if f.example:
            lines.append(f"Example: [bold]posterforge train {kind} --arch {f.name} {f.example}[/]")
    lines.append(
        "Under [bold]torchrun --nproc-per-node N[/] the same command trains with "
        "DistributedDataParallel."
    )
    return "\n\n".join(lines)


def family_command(kind: str, families: list[Family]) -> Any:
    """The ``train KIND`` command for these families (a function with a built signature)."""
    inputs = _declared(families, "inputs")
    options = _declared(families, "options")
    several = len(families) > 1

    def command(**kw: Any) -> None:
        given_inputs = {k: kw.pop(k) for k in inputs}
        given_options = {k: kw.pop(k) for k in options}
        with _interrupt_line(kind):
            path = _train_or_resume(kind, given_inputs, given_options, kw)
        if path is not None:
            typer.echo(str(path))

    command.__doc__ = _help(kind, families)
    params = _params(inputs, several) + _params(options, several) + _common(kind, families)
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = kind
    return command


def add_family_commands(host: PluginHost, *, builtin_only: bool = False) -> None:
    """(Re)build ``train translator`` and ``train generator`` from the registered families."""
    builtin = host.builtin_plugins()
    app.registered_commands = [c for c in app.registered_commands if c.name not in KINDS]
    for kind in KINDS:
        entries = [
            e
            for e in host.families
            if e.item.kind == kind and (not builtin_only or e.plugin in builtin)
        ]
        entries.sort(key=lambda e: (e.plugin not in builtin, e.name))  # the default comes first
        families = [e.item for e in entries]
        if families:
            app.command(kind)(family_command(kind, families))


def interrupt_line(kind: str, run_dir: Path, step: int, max_steps: int) -> str:
    """Where a stopped run is, its latest metrics (from metrics.jsonl) and how to go on."""
    from posterforge.training.monitor import read_metrics
    from posterforge.training.progress import metric_text

    found = read_metrics(run_dir)
    last = found[-1] if found else None
    metric = metric_text(last["step"], last["values"], last["seconds"]) if last else ""
    return (
        f"posterforge: interrupted at step {step} of {max_steps}, saved as a checkpoint"
        + (f" (latest metrics: {metric})" if metric else "")
        + f"; continue with: posterforge train {kind} --resume {run_dir}"
    )


@contextmanager
def _interrupt_line(kind: str) -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGHUP during training: one line that says where it stopped and how
    to go on, and the exit code a shell gives a process that signal stopped (130, 143, 129)."""
    from posterforge.training.stopping import TrainingInterrupted

    try:
        yield
    except TrainingInterrupted as e:
        print(interrupt_line(kind, e.run_dir, e.step, e.max_steps), file=sys.stderr)
        raise typer.Exit(128 + e.signum) from None


def _train_or_resume(
    kind: str,
    inputs: dict[str, Path | None],
    options: dict[str, str | bool | None],
    kw: dict[str, Any],
) -> Path | None:
    """``--resume RUN_DIR``, or a new run (whose job says what is missing)."""
    from posterforge import api
    from posterforge.cli.output import train_progress
    from posterforge.training import run

    resume, overrides = kw.pop("resume"), kw.pop("set_") or ()
    if resume is not None:
        given = {**inputs, **options, "name": kw["name"], "out": kw["out"], "set": overrides}
        given |= {k: kw[k] for k in ("arch", "preset", "init_from")}
        clash = ["--" + k.replace("_", "-") for k, v in given.items() if v]
        if clash:  # the run folder holds what was asked; silently ignoring these loses work
            raise PosterforgeError(
                f"--resume continues {resume} as it was first asked: leave out "
                f"{', '.join(clash)} (only --max-steps and --device may change)"
            )
        return run.resume(
            resume, max_steps=kw["max_steps"], device=kw["device"], progress=train_progress()
        )
    name, out = kw.pop("name"), kw.pop("out")
    return api.train(
        kind, inputs, name, out, progress=train_progress(), options=options, overrides=overrides,
        **kw,
    )  # fmt: skip


@app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by train.")],
    name: Annotated[str, typer.Option("--name", help="Name to store the model under.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint step (default: the newest).")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace stored weights of that name.")
    ] = False,
    direction: Annotated[
        str | None,
        typer.Option(
            help="Another net the run trained, where its family exports several (b2a: a "
            "translator trained both ways, back from B to A; default: its model)."
        ),
    ] = None,
    best: Annotated[
        bool,
        typer.Option(
            "--best", help="The run's best checkpoint by its train.best_by metric (not --step)."
        ),
    ] = False,
) -> None:
    """Store the model of a run's checkpoint (e.g. an earlier, better-looking step) under a name.
    Needs only the run folder (not the training data)."""
    from posterforge.training import run

    path = run.export(run_dir, name, step=step, overwrite=overwrite, direction=direction, best=best)
    typer.echo(str(path))
