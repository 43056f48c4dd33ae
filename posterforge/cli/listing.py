"""``posterforge plugins``, ``styles`` and ``generators``: what is installed and what can run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posterforge.cli.output import print_json, print_table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


plugins_app = typer.Typer(
    invoke_without_command=True,
    help="List the loaded plugins, or start a new one (plugins new).",
)


@plugins_app.callback()
def plugins(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the loaded plugins: name, version, hooks and load errors."""
    if ctx.invoked_subcommand is not None:
        return
    from posterforge.plugins import get_host

    infos = [p.as_dict() for p in get_host().plugins.values()]
    if as_json:
        print_json(infos)
        return
    rows = [
        (p["name"], p["version"], ", ".join(p["hooks"]), "; ".join(p["errors"]) or "ok")
        for p in infos
    ]
    print_table("Plugins", ("name", "version", "hooks", "status"), rows)


@plugins_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Distribution name, e.g. posterforge-sepia.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Parent folder; the plugin goes into DIR/NAME.")
    ] = Path("."),
    kind: Annotated[str, typer.Option(help="What the plugin registers: translator.")] = (
        "translator"
    ),
) -> None:
    """Write a ready-to-install plugin package: pyproject.toml, a translator, README, tests.

    [bold]posterforge plugins new posterforge-sepia[/] makes the style [bold]sepia[/].
    """
    from posterforge.plugin_template import new_plugin

    target = new_plugin(name, directory, kind)
    typer.echo(str(target))
    typer.echo(f"next: pip install -e '{target}[test]' && pytest {target}", err=True)


def styles(as_json: JsonOpt = False) -> None:
    """List the styles `translate` accepts and whether their weights are present."""
    from posterforge.api import list_styles

    items = list_styles()
    if as_json:
        print_json([s.as_dict() for s in items])
        return
    rows = [(s.name, s.translator, s.status, s.description) for s in items]
    print_table("Styles", ("style", "translator", "weights", "description"), rows)


def generators(as_json: JsonOpt = False) -> None:
    """List the generator models `generate` accepts and whether their weights are present."""
    from posterforge.api import list_generators
    from posterforge.plugins import get_host

    items = list_generators()
    archs = [{"arch": e.name, "plugin": e.plugin} for e in get_host().generators]
    if as_json:
        print_json({"models": [g.as_dict() for g in items], "architectures": archs})
        return
    rows = [(g.name, g.arch, g.status, g.labels_note, g.description) for g in items]
    print_table("Generator models", ("model", "arch", "weights", "labels", "description"), rows)
    print_table("Architectures", ("arch", "plugin"), [(a["arch"], a["plugin"]) for a in archs])


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
    app.command("styles")(styles)
    app.command("generators")(generators)
