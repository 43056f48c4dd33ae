"""``posterforge train translator|generator|export``: a thin layer over
:mod:`posterforge.training.run`.

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

if TYPE_CHECKING:
    from posterforge.family import Family
    from posterforge.plugins import PluginHost

app = typer.Typer(
    help="Train new models (a style for translate, or a generator).", no_args_is_help=True
)

KINDS = ("translator", "generator")
WHAT = {"translator": "a translator (a style for translate)", "generator": "a generator"}


def _common(kind: str, families: list[Family]) -> list[inspect.Parameter]:
    """The options every train command has, after the families' own."""
    names = ", ".join(f.name for f in families)
    stored = "Style name" if kind == "translator" else "Model name"
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
        ("overwrite", bool, typer.Option(help="Replace stored weights of that name.")),
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


def family_command(kind: str, families: list[Family]) -> Any:
    """The ``train KIND`` command for these families (a function with a built signature)."""
    inputs = _declared(families, "inputs")
    options = _declared(families, "options")

    def whose(owners: list[str]) -> str:  # which families take an option, when several could
        return f" (for {', '.join(owners)})" if len(families) > 1 else ""

    params = []
    for key, (spec, owners) in inputs.items():
        meta = f"{spec.kind.upper()}"
        help_text = f"{spec.help}{whose(owners)}"
        opt = typer.Option(spec.flag, help=help_text, metavar=meta)
        params.append(
            inspect.Parameter(
                key,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[Path | None, opt],
            )
        )
    for key, (spec, owners) in options.items():
        choices = f" ({' | '.join(spec.choices)})" if spec.choices else ""
        opt = typer.Option(spec.flag, help=f"{spec.help}{choices}{whose(owners)}")
        params.append(
            inspect.Parameter(
                key,
                inspect.Parameter.KEYWORD_ONLY,
                default=False if spec.switch else None,
                annotation=Annotated[bool if spec.switch else str | None, opt],
            )
        )
    params += _common(kind, families)

    def command(**kw: Any) -> None:
        given_inputs = {k: kw.pop(k) for k in inputs}
        given_options = {k: kw.pop(k) for k in options}
        given_options = {k: None if v is False else v for k, v in given_options.items()}
        for key, value in given_options.items():
            choices = options[key][0].choices
            if value is not None and choices and value not in choices:
                flag = options[key][0].flag
                raise PosterforgeError(
                    f"{flag} must be one of {', '.join(choices)}, not {value!r}"
                )
        with _interrupt_line(kind):
            _train_or_resume(kind, given_inputs, given_options, **kw)

    lines = [f"Train {WHAT[kind]} and store it under --name."]
    for f in families:
        lines.append(f"[bold]{f.name}[/]: {f.description}.")
        if f.example:
            lines.append(f"Example: [bold]posterforge train {kind} --arch {f.name} {f.example}[/]")
    lines.append(
        "Under [bold]torchrun --nproc-per-node N[/] the same command trains with "
        "DistributedDataParallel."
    )
    command.__doc__ = "\n\n".join(lines)
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


@contextmanager
def _interrupt_line(kind: str) -> Iterator[None]:
    """Ctrl-C during training: one line that says where it stopped and how to go on."""
    from posterforge.training.harness import TrainingInterrupted

    try:
        yield
    except TrainingInterrupted as e:
        print(
            f"posterforge: interrupted at step {e.step} of {e.max_steps}, saved as a checkpoint; "
            f"continue with: posterforge train {kind} --resume {e.run_dir}",
            file=sys.stderr,
        )
        raise typer.Exit(130) from None


def _train_or_resume(
    kind: str,
    inputs: dict[str, Path | None],
    options: dict[str, str | bool | None],
    *,
    name: str | None,
    out: Path | None,
    resume: Path | None,
    set_: list[str] | None,
    **rest: Any,
) -> None:
    """``--resume RUN_DIR``, or a new run that needs ``--name`` and ``--out``."""
    from posterforge.training import run

    if resume is not None:
        given = {**inputs, **options, "name": name, "out": out, "set": set_}
        given |= {k: rest.get(k) for k in ("arch", "preset", "init_from")}
        clash = ["--" + k.replace("_", "-") for k, v in given.items() if v]
        if clash:  # the run folder holds what was asked; silently ignoring these loses work
            raise PosterforgeError(
                f"--resume continues {resume} as it was first asked: leave out "
                f"{', '.join(clash)} (only --max-steps and --device may change)"
            )
        path = run.resume(resume, max_steps=rest["max_steps"], device=rest["device"])
    else:
        family = run.family_for(kind, rest.get("arch"))
        declared = {i.name for i in family.inputs}
        extra = ["--" + k.replace("_", "-") for k, v in inputs.items() if v and k not in declared]
        if extra:
            raise PosterforgeError(f"{family.name} does not take {', '.join(extra)}")
        missing = [i.flag for i in family.inputs if i.required and inputs.get(i.name) is None]
        missing += [f"--{k}" for k, v in {"name": name, "out": out}.items() if v is None]
        if missing:
            raise PosterforgeError(f"missing {', '.join(missing)} (or pass --resume RUN_DIR)")
        assert name is not None and out is not None
        path = run.train(kind, inputs, name, out, options=options, overrides=set_ or (), **rest)
    if path is not None:
        typer.echo(str(path))


@app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by train.")],
    name: Annotated[str, typer.Option("--name", help="Name to store the model under.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint step (default: the newest).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace stored weights of that name.")] = False,
) -> None:
    """Store the model of a run's checkpoint (e.g. an earlier, better-looking step) under a name.
    Needs only the run folder (not the training data)."""
    from posterforge.training import run

    typer.echo(str(run.export(run_dir, name, step=step, overwrite=overwrite)))
