"""The commands in the docs run: every fenced block marked ``run`` in README.md and docs/*.md.

The convention: a block whose info string is ```` ```bash run ```` (or ```` ```python run ````)
runs on a CPU in seconds with only the files in the repository. GitHub still renders it as bash
(or Python). Blocks that need your own folders, a GPU or long training stay plain ```` ```bash ````.

Each block runs in a fresh temporary folder that holds links to what the docs use
(``examples/``, ``docs/``, ``.venv``), with the virtual environment's ``bin`` first on ``PATH``
(so ``posterforge`` and ``.venv/bin/posterforge`` both work) and an empty ``POSTERFORGE_HOME``.
Bash blocks run under ``set -euo pipefail``; Python blocks with this interpreter.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = ("examples", "docs", "presets")  # what the blocks may read, relative to the repository
TIMEOUT_S = 180
FENCE = re.compile(r"^```(\S*)(.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str

    @property
    def file(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def runnable_blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path`` whose info string has the word ``run``."""
    blocks, current, lines = [], None, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if current is None and match:
            current, lines = (number, match.group(1), match.group(2).split()), []
        elif current is not None and line.startswith("```"):
            start, lang, flags = current
            if "run" in flags:
                blocks.append(Block(path, start, lang, "\n".join(lines) + "\n"))
            current = None
        elif current is not None:
            lines.append(line)
    return blocks


BLOCKS = [b for p in DOCS for b in runnable_blocks(p)]


def test_the_convention_is_in_use():
    assert len(BLOCKS) >= 5, [b.where for b in BLOCKS]
    for block in BLOCKS:
        assert block.lang in ("bash", "python"), f"{block.where}: run only bash or python blocks"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(ROOT / name, target_is_directory=True)
    (work / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_docs_block_runs(block: Block, workdir: Path, pf_home: Path):
    env = {k: v for k, v in os.environ.items() if k != "POSTERFORGE_LOAD_PLUGINS"}
    bindir = sysconfig.get_path("scripts")
    env.update(PATH=os.pathsep.join([bindir, env.get("PATH", "")]), POSTERFORGE_HOME=str(pf_home))
    if block.lang == "bash":
        # one line goes before the block: the block's line k is bash's line k + 1, and the
        # file's line block.line + k
        where = f"{block.file}:$((LINENO + {block.line - 1}))"
        trap = f"trap 'echo \"{where}: failed: $BASH_COMMAND\" >&2' ERR"
        cmd = ["bash", "-c", f"set -euo pipefail; {trap}\n{block.code}"]
    else:
        cmd = [sys.executable, "-c", block.code]
    code, out, err = _run(cmd, workdir, env)
    if code is None:
        pytest.fail(f"{block.where}: still running after {TIMEOUT_S} s:\n{block.code}")
    if code != 0:
        pytest.fail(_failure(block, code, out, err), pytrace=False)


def _failure(block: Block, code: int, out: str, err: str) -> str:
    """Which line of which file failed, with the command, then the block and its output."""
    head = f"{block.where}: the {block.lang} block exited with {code}"
    failed = re.findall(rf"^{re.escape(block.file)}:(\d+): failed: ", err, re.M)
    if failed:
        line, lines = int(failed[-1]), block.code.splitlines()
        if 0 <= line - block.line - 1 < len(lines):
            command = lines[line - block.line - 1].strip()
            head = f"{block.file}:{line}: `{command}` failed (exit {code})"
    return (
        f"{head}\n--- block ({block.where}) ---\n{block.code}"
        f"--- stdout (end) ---\n{out[-3000:]}\n--- stderr (end) ---\n{err[-3000:]}"
    )


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int | None, str, str]:
    """Run in its own process group, so that a timeout also ends the commands it started."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err
