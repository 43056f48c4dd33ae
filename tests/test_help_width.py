"""Help read in an 80-column terminal, every command of it: no option name cut short (``…``),
no ``<bool>`` beside flags, and prose wrapped by the terminal, not by the source's line breaks."""

from __future__ import annotations

import itertools
import re

import pytest

WIDTH = 80


def _help(inproc, *path: str) -> str:
    result = inproc(*path, "--help", env={"COLUMNS": str(WIDTH), "NO_COLOR": "1"})
    assert result.code == 0, result.err
    return result.out


def _subcommands(text: str) -> list[str]:
    """The names in a help page's Commands panel."""
    panel = text.split("─ Commands ", 1)
    if len(panel) == 1:
        return []
    names = []
    for line in panel[1].splitlines()[1:]:
        if line.startswith("╰"):
            break
        if m := re.match(r"│ (\S+)\s{2,}", line):
            names.append(m.group(1))
    return names


def _every_page(inproc) -> dict[str, str]:
    pages, todo = {}, [()]
    while todo:
        path = todo.pop()
        pages[" ".join(path) or "posterforge"] = text = _help(inproc, *path)
        todo += [(*path, name) for name in _subcommands(text)]
    return pages


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    from tests.conftest import run_inprocess

    return _every_page(run_inprocess)


def test_every_command_is_read(pages):
    expected = {
        "posterforge",
        "translate",
        "generate",
        "train",
        "train generator",
        "weights rename",
    }
    assert expected <= set(pages)


def test_no_option_name_or_type_cut_short(pages):
    cut = {name: [ln for ln in text.splitlines() if "…" in ln] for name, text in pages.items()}
    assert not {k: v for k, v in cut.items() if v}


def test_flags_show_no_type(pages):
    assert not [name for name, text in pages.items() if "<bool>" in text]
    assert re.search(r"│ --overwrite\s{2,}Replace", pages["translate"])  # a plain flag


def _early_breaks(text: str) -> list[str]:
    """Lines of prose (outside the panels) that end although the next word would have fit."""
    prose = text.split("╭", 1)[0].splitlines()
    early = []
    for line, after in itertools.pairwise(prose):
        words = after.split()
        fitted = words and len(line.rstrip()) + 1 + len(words[0]) <= WIDTH - 1
        if fitted and line.strip() and not line.lstrip().startswith("Usage:"):
            early.append(line.strip())
    return early


def test_prose_is_wrapped_by_the_terminal(pages):
    early = {name: _early_breaks(text) for name, text in pages.items()}
    assert not {k: v for k, v in early.items() if v}


def test_the_commands_panel_is_wrapped_by_the_terminal(pages):
    panel = pages["posterforge"].split("─ Commands ", 1)[1].split("╰", 1)[0]
    rows = [line.rstrip("│ ") for line in panel.splitlines()[1:]]
    # a row that goes on in the next line (one with no command name) was full
    short = [
        r
        for r, nxt in itertools.pairwise(rows)
        if re.match(r"│\s{3,}\S", nxt) and len(r) < WIDTH - 15
    ]
    assert not short
