"""The ``posterforge`` command: a thin Typer layer over the Python API.

Nothing here imports torch at module level: ``posterforge --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from posterforge import __version__
from posterforge.errors import PosterforgeError

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2

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
    from posterforge.cli import listing, translate, weights

    app.command("translate")(translate.translate)
    listing.register(app)
    app.add_typer(weights.app, name="weights")


_register_builtin_commands()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script: load plugins, add their commands, run, map errors."""
    from posterforge.plugins import get_host

    get_host().add_commands(app)
    try:
        app(args=list(argv) if argv is not None else None, prog_name="posterforge")
    except PosterforgeError as e:
        print(f"posterforge: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("posterforge: interrupted", file=sys.stderr)
        sys.exit(130)
