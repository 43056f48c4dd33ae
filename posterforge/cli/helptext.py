"""Help that reads well in an 80-column terminal.

Typer's rich help keeps a docstring's single line breaks, so text wrapped at 100 columns in the
source breaks twice a line at 80; and it prints ``<bool>`` beside every flag, which takes no
value. Both are fixed here, once, for every command (plugins' included).
"""

from __future__ import annotations

import inspect
import re

import typer

_VERBATIM = re.compile(
    r"^(\x08|\s|- |\* |\d+\. |[|`])"
)  # a block, a list, a table: kept as written


def unwrap(text: str) -> str:
    """Each prose paragraph on one line (the terminal wraps it); verbatim ones kept."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p if any(_VERBATIM.match(line) for line in p.splitlines()) else " ".join(p.split("\n"))
        for p in paragraphs
    )


def tidy(app: typer.Typer) -> None:
    """Unwrap the help of every command and group under ``app``."""
    for command in app.registered_commands:
        text = command.help or (command.callback and inspect.getdoc(command.callback))
        if text:
            command.help = unwrap(text)
    for group in app.registered_groups:
        if group.help:
            group.help = unwrap(group.help)
        if group.typer_instance is not None:
            tidy(group.typer_instance)


def flags_without_type() -> None:
    """A flag's row shows no type: typer's ``<bool>`` says nothing a flag's name does not."""
    from typer.core import TyperOption

    if getattr(TyperOption, "_posterforge_flags", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        return None if self.is_flag and not self.secondary_opts else shown(self, ctx)  # type: ignore[arg-type]

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    TyperOption._posterforge_flags = True  # type: ignore[attr-defined]
