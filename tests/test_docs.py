"""Docs that must not go stale: the hook reference, and every hook exercised by the tests."""

from __future__ import annotations

import re

from posterforge import hookspecs

from .conftest import ROOT


def test_hook_reference_is_generated_from_the_docstrings():
    text = (ROOT / "docs" / "hooks.md").read_text()
    assert text == hookspecs.render_reference(), (
        "docs/hooks.md is stale: regenerate it with "
        "python -c 'from posterforge.hookspecs import render_reference as r; print(r(), end=\"\")'"
        " > docs/hooks.md"
    )


def test_every_hookspec_is_listed_documented_and_exercised():
    specs = {n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "posterforge_spec")}
    assert specs == set(hookspecs.HOOK_NAMES)
    # by a fake or fixture plugin of the tests, not only by a first-party plugin
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    for name in hookspecs.HOOK_NAMES:
        assert getattr(hookspecs, name).__doc__, name
        assert re.search(rf"def {name}\(", tests), f"no test implements {name}"


def _fenced(text: str) -> list[str]:
    """The lines inside fenced code blocks."""
    inside, lines = False, []
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return lines


def test_readme_and_docs_name_real_commands():
    """Every `posterforge SUBCOMMAND` the docs mention exists in the CLI."""
    from posterforge.cli import app

    known = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    text = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in (ROOT / "docs").glob("*.md")
    )
    code = "\n".join(_fenced(text))
    used = set(re.findall(r"`posterforge ([a-z]+)\b", text))
    used |= set(re.findall(r"(?:^|[|;&] *|bin/)posterforge ([a-z]+)\b", code, re.M))
    missing = sorted(used - known)
    assert not missing, missing


def test_cli_reference_is_generated_from_the_app():
    from posterforge.cli.reference import render_cli_reference

    text = (ROOT / "docs" / "cli.md").read_text()
    assert text == render_cli_reference(), (
        "docs/cli.md is stale: regenerate it with python -m posterforge.cli.reference > docs/cli.md"
    )


def test_cli_reference_lists_every_builtin_command_and_no_plugin_command():
    import typer

    from posterforge.cli import listing
    from posterforge.cli.reference import render_cli_reference

    text = (ROOT / "docs" / "cli.md").read_text()
    for path in (
        "translate",
        "generate",
        "styles",
        "generators",
        "plugins",
        "plugins new",
        "weights list",
        "weights import",
        "weights path",
        "train translator",
        "train generator",
        "train export",
    ):
        assert re.search(rf"^#+ posterforge {path}\n", text, re.M), path
    assert "[bold]" not in text and "[/]" not in text

    app = typer.Typer()
    app.command("styles")(listing.styles)

    @app.command("hello")
    def hello() -> None:
        """A command that a plugin adds."""

    rendered = render_cli_reference(app)
    assert "posterforge styles" in rendered and "hello" not in rendered
