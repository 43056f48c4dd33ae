"""The ``posterforge`` command: a thin Typer layer over the Python API.

Nothing here imports torch at module level: ``posterforge --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from posterforge.cli.exits import EXIT_FAILED_INPUTS, EXIT_OK, EXIT_USAGE
from posterforge.errors import PosterforgeError
from posterforge.version import __version__

app = typer.Typer(
    name="posterforge",
    help="GAN image translation (CycleGAN styles) and generation (genre-conditioned posters).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"posterforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """GAN image translation (CycleGAN styles) and generation (genre-conditioned posters)."""


def _register_builtin_commands() -> None:
    from posterforge.cli import (
        evaluate,
        evalvideo,
        frames,
        generate,
        listing,
        morph,
        project,
        report,
        train,
        translate,
        warmup,
        weights,
    )

    app.command("translate")(translate.translate)
    app.command("frames")(frames.frames)
    app.command("generate")(generate.generate)
    app.command("project")(project.project)
    app.command("mix")(project.mix)
    app.command("morph")(morph.morph)
    app.command("eval")(evaluate.evaluate)
    app.command("eval-video")(evalvideo.evaluate_video)
    app.command("warmup")(warmup.warmup)
    app.command("report")(report.report)
    app.command("runs")(report.runs)
    listing.register(app)
    app.add_typer(weights.app, name="weights")
    app.add_typer(train.app, name="train")


_register_builtin_commands()


def _failed_plugins(error: Exception, host: object) -> str:
    """For an unknown name: the plugins that failed to load (the name may have been theirs)."""
    from posterforge.errors import UnknownNameError
    from posterforge.plugins import Stage

    if not isinstance(error, UnknownNameError):
        return ""
    failed = [
        f"{info.name} ({info.errors[0].detail})"
        for info in host.plugins.values()  # type: ignore[attr-defined]
        if info.errors and info.errors[0].stage == Stage.LOAD
    ]
    return f"; plugins that failed to load: {', '.join(failed)}" if failed else ""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script: load plugins, add their commands, run, map errors."""
    from posterforge.cli import helptext, train
    from posterforge.cli.signals import exit_code, take_terminations
    from posterforge.plugins import get_host

    take_terminations()
    host = get_host()
    train.add_family_commands(host)
    host.add_commands(app)
    helptext.tidy(app)
    helptext.flags_without_type()
    if host.unknown_requested:
        names = ", ".join(host.unknown_requested)
        print(
            f"posterforge: error: POSTERFORGE_LOAD_PLUGINS names no installed plugin: {names}",
            file=sys.stderr,
        )
        sys.exit(EXIT_USAGE)
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    try:
        code = app(
            args=list(argv) if argv is not None else None,
            prog_name="posterforge",
            standalone_mode=False,
        )
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except NoArgsIsHelpError as e:  # a bare group: its help, as the user most likely wants
        if e.ctx is not None:
            e.ctx.get_help()  # typer renders it (rich) to stdout itself
        sys.exit(EXIT_USAGE)
    except ClickException as e:  # a usage error (unknown option, bad value): one line
        print(f"posterforge: error: {_usage_line(e)}", file=sys.stderr)
        sys.exit(e.exit_code)
    except PosterforgeError as e:
        print(f"posterforge: error: {e}{_failed_plugins(e, host)}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP taken as one
        print("posterforge: interrupted", file=sys.stderr)
        sys.exit(exit_code(e))
    except OSError as e:  # a full disk, a read-only folder: one line, not a traceback
        from posterforge.atomic import os_error_line

        print(f"posterforge: error: {os_error_line(e)}", file=sys.stderr)
        sys.exit(EXIT_FAILED_INPUTS)


def _usage_line(e: Exception) -> str:
    """Click's message on one line, with where to read more."""
    from typer._click.exceptions import UsageError

    text = " ".join(e.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(e, "ctx", None) if isinstance(e, UsageError) else None
    if ctx is not None:
        text += f" (see: {ctx.command_path} --help)"
    return text
