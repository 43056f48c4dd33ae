"""The CLI reference in docs/cli.md, made from the Typer app itself.

Regenerate it with ``python -m posterforge.cli.reference > docs/cli.md``; a test fails when the
file is stale. Only the commands defined in ``posterforge.cli`` are listed: plugins add theirs to
the same app when ``main`` runs, and which plugins are installed differs from one machine to the
next. Nothing here depends on the terminal (no wrapping, no colour) and Rich markup is stripped.

The ``posterforge`` command never imports this module (``--help`` stays fast).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import typer

BUILTIN_MODULE = "posterforge.cli"

HEADER = """\
# CLI reference

<!-- Generated from the Typer app in posterforge/cli/: do not edit by hand. -->

Every built-in `posterforge` command with its usage, help and options, generated from the CLI's
own definitions: edit the help texts in `posterforge/cli/`, then regenerate this file with
`python -m posterforge.cli.reference > docs/cli.md` (a test in `tests/test_docs.py` fails while
it is stale). Commands that plugins add (through the `register_commands` hook) are left out,
because they depend on what is installed: `posterforge --help` lists them. Every command also
takes `-h`/`--help`.
"""


def _plain(text: str | None) -> str:
    """Help text without Rich markup (``[bold]...[/]``), one line per paragraph."""
    if not text:
        return ""
    from rich.text import Text

    paragraphs = inspect.cleandoc(text).split("\n\n")
    joined = "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
    return Text.from_markup(joined).plain


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _is_builtin(cmd: Any) -> bool:
    """Defined in posterforge.cli; a group counts when any of its commands does."""
    module = getattr(cmd.callback, "__module__", None) or ""
    if module == BUILTIN_MODULE or module.startswith(BUILTIN_MODULE + "."):
        return True
    return any(_is_builtin(sub) for sub in getattr(cmd, "commands", {}).values())


def _children(cmd: Any, ctx: Any) -> list[tuple[str, Any]]:
    if not hasattr(cmd, "list_commands"):
        return []
    subs = [(name, cmd.get_command(ctx, name)) for name in cmd.list_commands(ctx)]
    return [(name, sub) for name, sub in subs if not sub.hidden and _is_builtin(sub)]


def _params_table(cmd: Any, ctx: Any, kind: str) -> list[str]:
    rows = []
    for param in cmd.get_params(ctx):
        if param.param_type_name != kind or param.name == "help":
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, full = record
        helptext = param.help or ""
        extra = full[len(helptext) :].strip() if full.startswith(helptext) else ""
        if extra.startswith("[") and extra.endswith("]"):
            extra = extra[1:-1]
        rows.append(f"| `{_cell(names)}` | {_cell(_plain(helptext))} | {_cell(extra)} |")
    if not rows:
        return []
    title = "argument" if kind == "argument" else "option"
    return [f"| {title} | description | default, limits |", "|---|---|---|", *rows, ""]


def _section(cmd: Any, ctx: Any, level: int) -> list[str]:
    usage = " ".join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])
    lines = [f"{'#' * level} {ctx.command_path}", "", "```text", f"Usage: {usage}", "```", ""]
    helptext = _plain(cmd.help)
    if helptext:
        lines += [helptext, ""]
    lines += _params_table(cmd, ctx, "argument")
    lines += _params_table(cmd, ctx, "option")
    children = _children(cmd, ctx)
    if children:
        lines += ["| command | what it does |", "|---|---|"]
        for name, sub in children:
            first = _plain(sub.help).split("\n\n")[0]
            anchor = f"{ctx.command_path} {name}".replace(" ", "-")
            lines.append(f"| [`{name}`](#{anchor}) | {_cell(first)} |")
        lines.append("")
    for name, sub in children:
        lines += _section(sub, typer.Context(sub, info_name=name, parent=ctx), level + 1)
    return lines


def render_cli_reference(app: typer.Typer | None = None) -> str:
    """The Markdown of docs/cli.md: the built-in commands of ``app`` (default: posterforge's,
    with ``train`` built from the first-party families only)."""
    if app is None:
        from posterforge.cli import app, train
        from posterforge.plugins import get_host

        train.add_family_commands(get_host(), builtin_only=True)
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="posterforge", **root.context_settings)
    lines = _section(root, ctx, 2)
    return HEADER + "\n" + "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_cli_reference())
