"""Metrics while training, through a real family (CycleGAN's tiny recipe): the held-out split,
the translator metrics at their steps, the best checkpoint exported with ``train export --best``,
and the refusals before any step."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posterforge.errors import PosterforgeError
from posterforge.images import encode_atomic
from posterforge.training import run
from posterforge.training.monitor import best_path, read_metrics

SETS = ["eval_images=10", "train.eval_every=2", 'train.best_by="fid_a2b"']


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("domains")
    rng = np.random.default_rng(0)
    for domain, tint in (("a", 200), ("b", 60)):
        for i in range(13):
            rgb = np.clip(rng.integers(-30, 30, (40, 40, 3)) + tint, 0, 255).astype(np.uint8)
            encode_atomic(rgb, root / domain / f"{i:02d}.png")
    return root


def _train(domains, out, sets, steps=4):
    inputs = {"a": domains / "a", "b": domains / "b"}
    return run.train("translator", inputs, "tiny-metrics", out, arch="cyclegan", preset="tiny",
                     max_steps=steps, device="cpu", overrides=sets)  # fmt: skip


@pytest.mark.slow
def test_a_translator_run_scores_its_held_out_images_and_exports_its_best(
    domains, tmp_path, pf_home, inproc
):
    out = tmp_path / "run"
    _train(domains, out, SETS)
    lines = read_metrics(out)
    assert [m["step"] for m in lines] == [2, 4]
    for m in lines:
        assert set(m["values"]) == {"fid_a2b", "fid_b2a", "cycle_a", "cycle_b"}
        assert all(np.isfinite(v) for v in m["values"].values())
    request = json.loads((out / "request.json").read_text())
    held = request["data_summary"]["held_out"]
    assert (
        len(held["a"]) == len(held["b"]) == 10 and request["recipe"]["model"]["eval_images"] == 10
    )
    best = min(lines, key=lambda m: m["values"]["fid_a2b"])
    assert best_path(out).is_file()
    r = inproc("train", "export", str(out), "--name", "best-one", "--best")
    assert r.code == 0, r.err
    from posterforge.weights import read_header

    assert read_header(r.out.strip())["provenance"]["steps"] == best["step"]


def test_the_held_out_images_are_never_trained_on(domains):
    from posterforge_cyclegan.training import make_data

    recipe = {"size": 32, "load_size": 32, "eval_images": 10}
    s = make_data({"a": domains / "a", "b": domains / "b"}, recipe, seed=3)
    try:
        assert len(s.held_a) == 10 and not set(s.held_a) & set(s.a.paths)
        assert len(s.a.paths) == 3 and set(s.held_b).isdisjoint(s.b.paths)
        assert s.held_out()["A"].shape == (10, 3, 32, 32)
    finally:
        s.close()
    again = make_data({"a": domains / "a", "b": domains / "b"}, recipe, seed=3)
    assert again.held_a == s.held_a  # seeded: a resume holds out the same images
    again.close()


@pytest.mark.parametrize(
    ("sets", "said"),
    [
        (["eval_images=5", "train.eval_every=2"], r"--a .*: eval_images = 5 holds out too few "
         r"images for the metrics \(at least 10\): raise eval_images"),
        (["eval_images=13", "train.eval_every=2"], r"eval_images = 13 leaves none of its 13"),
        (["train.eval_every=2"], r"train.eval_every = 2: no images are held out"),
        (['train.best_by="fid"'], r"train.best_by = 'fid' needs metrics"),
    ],
)  # fmt: skip
def test_a_split_too_small_is_refused_before_training(domains, tmp_path, pf_home, sets, said):
    with pytest.raises(PosterforgeError, match=said):
        _train(domains, tmp_path / "run", sets)
    assert not (tmp_path / "run" / "checkpoints").exists() or not list(
        (tmp_path / "run" / "checkpoints").iterdir()
    )


@pytest.mark.slow
def test_export_best_without_one_says_why(domains, tmp_path, pf_home, inproc):
    out = tmp_path / "run"
    _train(domains, out, [], steps=1)
    r = inproc("train", "export", str(out), "--name", "nope", "--best")
    assert r.code != 0 and "no best checkpoint" in r.err
    assert len(r.err.strip().splitlines()) == 1
