"""Presets are data that must survive a non-editable install (read from the built wheel)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from posterforge import presets
from posterforge.errors import UnknownNameError
from posterforge.plugins import get_host

from .conftest import ROOT, pip_install_into


def test_genres_are_the_twenty_imdb_genres():
    genres = presets.labels("genres", get_host())
    assert len(genres) == 20 == len(set(genres.names))
    assert {"horror", "comedy", "sci-fi", "western"} <= set(genres.names)
    assert genres.noun == "genre" and genres.find("Musical") == genres.index("music")


def test_style_presets_name_a_translator():
    assert {"vintage", "yourname", "spiritedaway"} <= set(presets.names("styles", get_host()))
    for name in presets.names("styles", get_host()):
        preset = presets.load("styles", name, get_host())
        assert preset["translator"] and preset["description"], name


def test_unknown_preset_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'vintage'"):
        presets.load("styles", "vintag", get_host())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    [whl] = out.glob("posterforge-*.whl")
    return whl


def test_wheel_carries_presets_and_plugins(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "posterforge_genre_cgan/presets/labels/genres.toml" in names
    assert "posterforge_cyclegan/presets/styles/vintage.toml" in names
    assert "posterforge_cyclegan/presets/recipes/anime.toml" in names
    assert "posterforge_genre_cgan/presets/recipes/posters-demo.toml" in names
    assert "posterforge_cyclegan/__init__.py" in names
    assert "posterforge_genre_cgan/__init__.py" in names
    assert "posterforge_genre_cgan/weights/posters-demo.safetensors" in names
    assert "posterforge_genre_cgan/weights/posters-demo.sha256" in names
    assert "posterforge_stylegan/weights/posters-stylegan.safetensors" in names
    assert "posterforge_stylegan/presets/recipes/posters-demo.toml" in names
    assert "posterforge/templates/plugin/pyproject.toml.tmpl" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[posterforge]" in text and "cyclegan = posterforge_cyclegan" in text
    assert "genre-cgan = posterforge_genre_cgan" in text


def test_presets_readable_after_non_editable_install(wheel, tmp_path):
    target = tmp_path / "site"
    pip_install_into(target, wheel)
    code = (
        "import posterforge, posterforge.presets as p, posterforge.plugins as pl;"
        "print(posterforge.__file__);"
        "print(pl.get_host().presets['styles'].get('vintage').source);"
        "print(p.load('styles', 'vintage', pl.get_host())['weights']);"
        "print(pl.get_host().families.get('genre-cgan').recipe_names())"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    # Run outside the checkout so that nothing can fall back to the source tree.
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(target))
    assert out[1].startswith(str(target / "posterforge_cyclegan" / "presets"))
    assert out[2] == "vintage"
    assert out[3] == "['default', 'posters-demo', 'tiny']"
