"""The example third-party plugin in docs/ installed for real (pip, entry point) and run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT, pip_install_into

TOON = ROOT / "docs" / "examples" / "posterforge-toon"
FRAMES = [ROOT / "examples" / "frames" / f for f in ("chelsea.jpg", "rocket.jpg")]


@pytest.fixture(scope="module")
def toon_site(tmp_path_factory) -> Path:
    """posterforge-toon pip-installed into its own folder (not into the venv)."""
    target = tmp_path_factory.mktemp("toon-site")
    pip_install_into(target, TOON)
    return target


def distinct_colours(rgb: np.ndarray) -> int:
    return len(np.unique(rgb.reshape(-1, 3), axis=0))


def test_plugins_and_styles_list_toon(inproc, toon_site):
    r = inproc("plugins", "--json", extra_path=toon_site)
    assert r.code == 0, r.err
    toon = {p["name"]: p for p in json.loads(r.out)}["toon"]
    assert (toon["version"], toon["module"], toon["errors"]) == ("0.1.0", "posterforge_toon", [])
    assert toon["hooks"] == ["register_translators"]
    r = inproc("styles", "--json", extra_path=toon_site)
    style = {s["name"]: s for s in json.loads(r.out)}["toon"]
    assert (style["status"], style["origin"]) == ("no weights needed", "plugin:toon")


@pytest.mark.slow
def test_translate_with_the_toon_style(inproc, toon_site, tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = ["translate", *map(str, FRAMES), "--style", "toon", "--out", str(out), "-f", "png"]
    r = inproc(*args, extra_path=toon_site)
    assert r.code == 0, r.err
    written = [Path(line) for line in r.out.split()]
    assert written == [out / "chelsea.png", out / "rocket.png"]

    monkeypatch.syspath_prepend(str(toon_site))  # the installed filter, to compare with the CLI
    import torch
    from posterforge_toon.filters import ToonFilter

    for src, dst in zip(FRAMES, written, strict=True):
        before = np.asarray(Image.open(src).convert("RGB"))
        after = np.asarray(Image.open(dst))
        assert after.shape == before.shape and after.dtype == np.uint8
        assert distinct_colours(after) < distinct_colours(before) / 4
        x = torch.from_numpy(before.copy()).permute(2, 0, 1)[None].float() / 255
        expected = (ToonFilter()(x)[0].permute(1, 2, 0) * 255).round().numpy()
        close = np.abs(after.astype(float) - expected) <= 1
        assert close.mean() > 0.99  # the CLI ran this filter (up to rounding at colour steps)


@pytest.mark.slow
def test_the_plugin_passes_its_own_tests_when_installed(toon_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(toon_site), "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import posterforge_toon as t; print(t.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(toon_site)
    tests = TOON / "tests"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert " passed" in r.stdout and "failed" not in r.stdout


def test_the_tutorial_shows_the_real_code():
    """Every python and toml block of docs/plugins.md is a verbatim piece of the example."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    text = text.split("\n## A model family of your own")[0]  # the toon tutorial's part
    blocks = re.findall(r"^```(?:python|toml)\n(.*?)^```", text, re.M | re.S)
    sources = [p.read_text() for p in (*TOON.rglob("*.py"), TOON / "pyproject.toml")]
    assert len(blocks) >= 7
    for block in blocks:
        assert any(block in source for source in sources), block[:200]
