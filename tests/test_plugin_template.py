"""``posterforge plugins new``: the generated package installs, is discovered, runs, and passes
its own tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posterforge.errors import PosterforgeError
from posterforge.plugin_template import new_plugin, plugin_names

from .conftest import ROOT, pip_install_into

FRAME = ROOT / "examples" / "frames" / "coffee.jpg"


@pytest.mark.parametrize(
    ("name", "package", "style", "cls"),
    [
        ("posterforge-sepia", "posterforge_sepia", "sepia", "SepiaTranslator"),
        ("my-night-sky", "my_night_sky", "my-night-sky", "MyNightSkyTranslator"),
        ("grey_2", "grey_2", "grey-2", "Grey2Translator"),
    ],
)
def test_names_derived_from_the_plugin_name(name, package, style, cls):
    names = plugin_names(name)
    assert (names.dist, names.package, names.style, names.cls) == (name, package, style, cls)


@pytest.mark.parametrize(
    "name",
    [
        *("", "Sepia", "2tone", "a--b", "x-", "has space", "class", "posterforge", "pf.x"),
        *("posterforge-cyclegan", "posterforge_stylegan"),  # a first-party plugin's package
    ],
)
def test_invalid_names_are_refused(name, tmp_path):
    with pytest.raises(PosterforgeError, match="invalid plugin name") as e:
        new_plugin(name, tmp_path)
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_writes_the_skeleton_and_never_overwrites(tmp_path):
    target = new_plugin("posterforge-sepia", tmp_path)
    assert target == tmp_path / "posterforge-sepia"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "posterforge_sepia/__init__.py",
        "pyproject.toml",
        "tests/test_plugin.py",
    ]
    pyproject = (target / "pyproject.toml").read_text()
    assert '[project.entry-points.posterforge]\nsepia = "posterforge_sepia"' in pyproject
    assert "$" not in "".join(p.read_text() for p in target.rglob("*") if p.is_file())

    (target / "README.md").write_text("mine")
    with pytest.raises(PosterforgeError, match="already exists and is not empty"):
        new_plugin("posterforge-sepia", tmp_path)
    assert (target / "README.md").read_text() == "mine"


def test_an_empty_existing_folder_is_filled(tmp_path):
    (tmp_path / "sepia").mkdir()
    assert (new_plugin("sepia", tmp_path) / "sepia" / "__init__.py").is_file()


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(PosterforgeError, match="unknown plugin kind 'generator'"):
        new_plugin("sepia", tmp_path, kind="generator")


def test_cli_errors_are_one_line(inproc, tmp_path):
    r = inproc("plugins", "new", "Bad Name", "--dir", str(tmp_path))
    assert r.code == 2
    assert r.err.strip().splitlines() == [
        "posterforge: error: invalid plugin name 'Bad Name': use lowercase letters, digits and "
        "single - or _ between them, starting with a letter (e.g. posterforge-sepia)"
    ]


@pytest.mark.slow
def test_generated_plugin_installs_lists_translates_and_passes_its_tests(inproc, tmp_path):
    """Installed for real (pip, entry point) and run by its own tests in a new process; the
    commands run in this process, with the installed site on the path."""
    cli = inproc
    r = cli("plugins", "new", "posterforge-ash", "--dir", str(tmp_path / "src"))
    assert r.code == 0, r.err
    source = Path(r.out.strip())
    assert source == tmp_path / "src" / "posterforge-ash"

    site = tmp_path / "site"
    pip_install_into(site, source)
    r = cli("plugins", "--json", extra_path=site)
    assert r.code == 0, r.err
    ash = {p["name"]: p for p in json.loads(r.out)}["ash"]
    assert (ash["version"], ash["hooks"], ash["errors"]) == ("0.1.0", ["register_translators"], [])

    out = tmp_path / "out"
    r = cli(
        "translate", str(FRAME), "--style", "ash", "--out", str(out), "-f", "png",
        "--precision", "fp32", extra_path=site,
    )
    assert r.code == 0, r.err
    before = np.asarray(Image.open(FRAME).convert("RGB")).astype(int)
    after = np.asarray(Image.open(out / "coffee.png")).astype(int)
    assert after.shape == before.shape
    assert (after[..., 0] == after[..., 1]).all() and (after[..., 1] == after[..., 2]).all()
    luma = before @ np.array([0.299, 0.587, 0.114])
    assert np.abs(after[..., 0] - luma).max() <= 1

    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 passed" in r.stdout
