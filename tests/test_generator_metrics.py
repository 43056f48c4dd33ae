"""Metrics while a generator family trains (genre cGAN, StyleGAN): FID, KID, precision, recall
and label consistency from ``posterforge eval``'s code on the held-out images, at their steps,
part of the exact resume, never changing training's course; a split too small is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from posterforge.errors import PosterforgeError
from posterforge.evaluation.features import FeatureExtractor
from posterforge.images import encode_atomic
from posterforge.training import run
from posterforge.training.monitor import read_metrics
from posterforge.weights import load_weights

KEYS = {"fid", "kid", "precision", "recall", "label_consistency"}
METERED = ["eval_images=10", "train.eval_every=2", "train.checkpoint_every=2"]


class Means(FeatureExtractor):
    """Each image's channel means and spreads at 16x16: a weightless extractor for quick tests
    (the default one costs ~6 CPU-s per 10 images)."""

    name, num_features, size = "means", 6, 16

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.resize(images)
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


@pytest.fixture
def tiny_extractor(monkeypatch):
    monkeypatch.setattr(
        "posterforge.evaluation.features.default_extractor", lambda where, name=None: Means()
    )


def _folders(root, counts):
    rng = np.random.default_rng(0)
    for (label, n), tint in zip(counts.items(), (200, 60, 130), strict=False):
        for i in range(n):
            rgb = np.clip(rng.integers(-40, 40, (24, 12, 3)) + tint, 0, 255).astype(np.uint8)
            encode_atomic(rgb, root / label / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def posters(tmp_path_factory):
    return _folders(tmp_path_factory.mktemp("posters"), {"horror": 13, "comedy": 12})


def _train(arch, data, out, sets, steps=4):
    sets = ['balance="none"', *sets]
    return run.train("generator", {"data": data}, f"m-{out.name}", out, arch=arch, preset="tiny",
                     max_steps=steps, device="cpu", overrides=sets)  # fmt: skip


def _values(out):
    return [(m["step"], m["values"]) for m in read_metrics(out)]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["genre-cgan", "stylegan"])
def test_a_generator_run_scores_its_held_out_posters_at_its_steps(
    arch, posters, tmp_path, pf_home, tiny_extractor
):
    out = tmp_path / "run"
    _train(arch, posters, out, METERED, steps=3)
    lines = _values(out)
    assert [step for step, _ in lines] == [2, 3]  # every eval_every and the last step
    for _, values in lines:
        assert set(values) == KEYS and all(np.isfinite(v) for v in values.values())
        assert 0 <= values["precision"] <= 1 and 0 <= values["label_consistency"] <= 1
    held = json.loads((out / "request.json").read_text())["data_summary"]["held_out"]
    assert {k: v for k, v in held["label_counts"].items() if v} == {"comedy": 10, "horror": 10}
    assert len(held["images"]) == sum(held["label_counts"].values())  # one label an image


def test_the_held_out_posters_are_never_trained_on(posters, pf_home):
    from posterforge.context import default_context
    from posterforge_genre_cgan.training import make_data

    s = make_data({"data": posters}, {"eval_images": 10, "balance": "none"}, ctx=default_context())
    try:
        held_paths, rows = s.held
        assert len(held_paths) == 20 and set(held_paths).isdisjoint(s.paths)
        assert len(s.paths) == 5 and sorted(rows.sum(axis=0).tolist())[-2:] == [10, 10]
        got = s.held_out()
        assert got["image"].shape == (20, 3, 128, 64) and got["labels"].shape == (20, 20)
    finally:
        s.close()


@pytest.mark.slow
def test_metrics_change_neither_the_weights_nor_a_resumed_runs_numbers(
    posters, tmp_path, pf_home, tiny_extractor
):
    arch = "genre-cgan"
    _train(arch, posters, tmp_path / "plain", ["eval_images=10"])
    _train(arch, posters, tmp_path / "metered", METERED)
    plain = load_weights(tmp_path / "plain" / "model.safetensors").tensors
    metered = load_weights(tmp_path / "metered" / "model.safetensors").tensors
    assert plain.keys() == metered.keys()
    assert all(torch.equal(plain[k], metered[k]) for k in plain)
    _train(arch, posters, tmp_path / "resumed", METERED, steps=2)
    run.resume(tmp_path / "resumed", max_steps=4, device="cpu")
    straight = _values(tmp_path / "metered")
    assert [s for s, _ in straight] == [2, 4] and _values(tmp_path / "resumed") == straight


@pytest.mark.parametrize(
    ("counts", "sets", "said"),
    [
        ({"horror": 13, "comedy": 12}, ["eval_images=5"],
         r"--data .*: eval_images = 5 holds out too few images of each label .*at least 10 a "
         r"label.*raise eval_images"),
        ({"horror": 13, "comedy": 8, "drama": 10}, ["eval_images=10"],
         r"each label needs at least 11; too few: comedy \(8\), drama \(10\).*eval_images = 0"),
    ],
)  # fmt: skip
def test_a_held_out_split_too_small_is_refused_before_training(
    counts, sets, said, tmp_path, pf_home
):
    data = _folders(tmp_path / "data", counts)
    with pytest.raises(PosterforgeError, match=said):
        _train("genre-cgan", data, tmp_path / "run", [*sets, "train.eval_every=2"])
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_the_cached_real_features_give_the_numbers_of_a_fresh_pass():
    from posterforge.evaluation.generation import generator_metrics

    torch.manual_seed(0)
    real, rows = torch.rand(20, 3, 16, 8), torch.eye(2).repeat_interleave(10, dim=0)

    def sample(z, y):
        return torch.sigmoid(z[:, :1, None, None] + y[:, :1, None, None]).expand(-1, 3, 16, 8)

    cache: dict = {}
    first = generator_metrics(sample, 4, real, rows, ["x", "y"], extractor=Means(), cache=cache)
    assert set(cache) == {"real"} and cache["real"].shape == (20, 6)
    again = generator_metrics(sample, 4, real, rows, ["x", "y"], extractor=Means(), cache=cache)
    fresh = generator_metrics(sample, 4, real, rows, ["x", "y"], extractor=Means())
    assert first == again == fresh and set(first) == KEYS
    cache["real"] = cache["real"] + 1  # the cache is what the numbers come from
    moved = generator_metrics(sample, 4, real, rows, ["x", "y"], extractor=Means(), cache=cache)
    assert moved != fresh
