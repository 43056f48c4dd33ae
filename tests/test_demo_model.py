"""The shipped demo generator: it installs from the package, and its genres are really
conditioned (generated posters of a genre look like the demo set's posters of that genre)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from posterforge import presets
from posterforge.generation import load_generator, sample
from posterforge.plugins import get_host
from posterforge_genre_cgan import DEMO_FILE, DEMO_NAME
from posterforge_genre_cgan.demo_data import make_demo_posters


def features(x: torch.Tensor) -> np.ndarray:
    """Colour layout: each poster pooled to 8x4 RGB cells, as a 96-vector."""
    return torch.nn.functional.adaptive_avg_pool2d(x, (8, 4)).flatten(1).numpy()


@pytest.fixture(scope="module")
def centroids(tmp_path_factory) -> dict[str, np.ndarray]:
    """The mean feature of each genre over a fresh draw of the demo set (another seed than the
    one the model was trained on)."""
    from posterforge.training.data import load_image

    out = tmp_path_factory.mktemp("demo")
    make_demo_posters(out, per_genre=12, seed=123, mixed_share=0.0)
    genres = presets.labels("genres", get_host()).names
    return {
        g: features(
            torch.stack([load_image(p, (64, 128)) for p in sorted(out.glob(f"posters/{g}-*"))])
        ).mean(0)
        for g in genres
    }


@pytest.fixture(scope="module")
def demo():
    return load_generator("posters-demo", device="cpu")


def test_the_demo_model_is_installed_from_the_package_with_what_it_learnt(inproc):
    r = inproc("generators", "--json")
    assert r.code == 0, r.err
    from posterforge.store import Store
    from posterforge.weights import read_header

    load_generator("posters-demo", device="cpu")  # installs it into the store, sha256-checked
    header = read_header(Store().verified_path("posters-demo"))
    assert header["kind"] == "generator" and header["arch"] == "genre-cgan"
    assert "synthetic demo posters, not real films" in header["provenance"]["trained_on"]
    assert header["labels"] == list(presets.labels("genres", get_host()).names)
    assert DEMO_FILE.stat().st_size < 4 * 2**20  # a few MB at most
    assert DEMO_NAME in {m["name"] for m in json.loads(r.out)["models"]}


def test_horror_is_dark_and_comedy_bright(demo):
    horror = sample(demo, "horror", 32, seed=0)
    comedy = sample(demo, "comedy", 32, seed=0)  # the same noise: only the genre differs
    luminance = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    lum_h = (horror * luminance).sum(1).mean().item()
    lum_c = (comedy * luminance).sum(1).mean().item()
    assert lum_c - lum_h > 0.3, (lum_h, lum_c)


def test_generated_posters_are_nearest_to_their_own_genre(demo, centroids):
    names = list(centroids)
    table = np.stack([centroids[g] for g in names])
    hits = {}
    for genre in names:
        f = features(sample(demo, genre, 16, seed=1))
        nearest = ((f[:, None, :] - table[None]) ** 2).sum(-1).argmin(1)
        hits[genre] = float((nearest == names.index(genre)).mean())
    # pairs first: horror against comedy, with the centroid of each
    assert hits["horror"] >= 0.9 and hits["comedy"] >= 0.9, hits
    # and over all 20 genres (chance: 5%)
    assert np.mean(list(hits.values())) >= 0.9, hits
