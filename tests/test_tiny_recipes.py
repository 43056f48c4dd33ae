"""Every shipped family has a ``tiny`` recipe: small images, narrow nets and a log line every few
steps, so that a newcomer sees a run work end to end in about a minute on a laptop CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posterforge.images import encode_atomic
from posterforge.plugins import get_host
from posterforge.training import run
from posterforge_genre_cgan.demo_data import make_demo_posters

SHIPPED = ("cyclegan", "genre-cgan", "stylegan")


def _tiny(name: str) -> dict:
    family = get_host().families.get(name)
    assert "tiny" in family.recipe_names(), name
    return family.load_recipe("tiny")


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_family_has_a_tiny_recipe_that_logs_every_few_steps(name):
    train = _tiny(name)["train"]
    assert train["log_every"] <= 5 and train["sample_every"] <= 20 and train["max_steps"] <= 500


def test_the_tiny_recipes_are_small_images_and_narrow_nets():
    cyclegan = _tiny("cyclegan")["model"]
    assert cyclegan["size"] <= 64 and cyclegan["ngf"] <= 8 and cyclegan["n_blocks"] <= 2
    cgan = _tiny("genre-cgan")["model"]  # its DCGAN is 64x128 by construction: narrow instead
    assert cgan["ngf"] <= 8 and cgan["ndf"] <= 8 and cgan["batch_size"] <= 8
    style = _tiny("stylegan")["model"]
    assert max(style["image_size"]) <= 64 and style["channel_max"] <= 32


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-data")
    make_demo_posters(root / "posters", per_genre=2, seed=0)
    rng = np.random.default_rng(0)
    for domain, tint in (("a", 200), ("b", 60)):
        for i in range(4):
            rgb = np.clip(rng.integers(-30, 30, (80, 96, 3)) + tint, 0, 255).astype(np.uint8)
            encode_atomic(rgb, root / domain / f"{i}.png")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_tiny_run_trains_and_stores_its_model(name, data, tmp_path, pf_home):
    kind = "translator" if name == "cyclegan" else "generator"
    posters = data / "posters"
    inputs = (
        {"a": data / "a", "b": data / "b"}
        if kind == "translator"
        else {"data": posters, "labels": posters / "labels.csv"}
    )
    path = run.train(kind, inputs, f"tiny-{name}", tmp_path / "run", arch=name, preset="tiny",
                     max_steps=5, device="cpu")  # fmt: skip
    assert path is not None and path.is_file()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [5]  # log_every 5
