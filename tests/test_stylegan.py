"""The StyleGAN family on the plugin contract: training through the generic harness, exact resume
with ADA's probability, export, and generation by genre name with the model's own truncation."""

from __future__ import annotations

import json

import pytest
import torch

from posterforge import plugins, presets
from posterforge.generation import load_generator, sample
from posterforge.training import run
from posterforge.weights import load_weights
from posterforge_genre_cgan.demo_data import make_demo_posters
from posterforge_stylegan.training import StyleGANTask

TINY = {
    "batch_size": 4,
    "z_dim": 16,
    "w_dim": 16,
    "mapping_layers": 2,
    "channel_base": 256,
    "channel_max": 16,
    "r1_interval": 2,
    "pl_weight": 1.0,
    "pl_interval": 2,
    "ada_speed_kimg": 0.02,  # p moves fast enough to see in a few steps
    "ada_interval": 1,
}


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    make_demo_posters(out, per_genre=2, seed=0)
    return out


def _train(tmp_path, demo_set, name, steps, **kw):
    return run.train(
        "generator",
        {"data": demo_set, "labels": demo_set / "labels.csv"},
        name,
        tmp_path / name,
        arch="stylegan",
        overrides=[f"{k}={json.dumps(v)}" for k, v in TINY.items()]
        + ["train.log_every=1", "train.checkpoint_every=2"],
        max_steps=steps,
        seed=5,
        device="cpu",
        **kw,
    )


def test_the_family_arrives_through_the_contract_only():
    host = plugins.get_host()
    entry = host.families.entry("stylegan")
    assert entry.plugin == "stylegan" and entry.item.kind == "generator"
    assert host.generators.entry("stylegan").plugin == "stylegan"
    assert {"default", "large"} <= set(entry.item.recipe_names())


@pytest.mark.slow
def test_resume_is_bit_exact_with_ada_and_exports_a_usable_model(tmp_path, demo_set):
    straight = _train(tmp_path, demo_set, "straight", 4)
    _train(tmp_path, demo_set, "halves", 2)
    resumed = run.resume(tmp_path / "halves", max_steps=4, device="cpu")
    a, b = load_weights(straight), load_weights(resumed)
    assert a.tensors.keys() == b.tensors.keys()
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    log = [json.loads(x) for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    halves = [json.loads(x) for x in (tmp_path / "halves" / "log.jsonl").read_text().splitlines()]
    assert [e["ada_p"] for e in log] == [e["ada_p"] for e in halves]  # ADA continued exactly
    assert max(e["ada_p"] for e in log) > 0  # and it moved off its start
    assert a.header["provenance"]["ada_p"] == b.header["provenance"]["ada_p"]
    assert a.header["labels"] == list(presets.labels("genres", plugins.get_host()).names)

    gen = load_generator(str(straight), device="cpu")
    x = sample(gen, "horror+comedy", 3, seed=1)
    assert x.shape == (3, 3, 128, 64) and x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x[1:], sample(gen, "horror+comedy", 2, seed=1, start=1))
    # truncation is the model's: psi -> 0 gives the genre's average w, whatever the noise
    t0 = sample(gen, "horror", 2, seed=1, truncation=1e-6)
    torch.testing.assert_close(t0[0], t0[1], atol=1e-4, rtol=0)
    assert not torch.allclose(t0[0], sample(gen, "comedy", 1, seed=1, truncation=1e-6)[0])


def test_ada_probability_rises_on_an_overfitting_discriminator():
    task = StyleGANTask(dict(TINY), list(presets.labels("genres", plugins.get_host()).names))
    p0 = float(task.augment.p)
    for _ in range(3):
        task._adapt(torch.full((8,), 5.0), 8)  # D is sure of every real poster
    assert float(task.augment.p) > p0
    for _ in range(20):
        task._adapt(torch.full((8,), -5.0), 8)
    assert float(task.augment.p) == 0.0


def test_the_larger_poster_size_builds_from_config(tmp_path):
    task = StyleGANTask({**TINY, "image_size": [128, 256]}, ["a", "b"])
    tensors, header = task.export()
    assert header["config"]["image_size"] == [128, 256]
    from posterforge.weights import save_weights

    path = tmp_path / "big.safetensors"
    save_weights(path, tensors, header)
    gen = load_generator(str(path), device="cpu")  # the file alone: no flags
    assert sample(gen, "a", 2).shape == (2, 3, 256, 128)


def test_the_shipped_stylegan_demo_installs_and_is_conditioned(inproc):
    from posterforge.store import Store
    from posterforge.weights import read_header
    from posterforge_stylegan import DEMO_FILE

    gen = load_generator("posters-stylegan", device="cpu")  # from the package, sha256-checked
    header = read_header(Store().verified_path("posters-stylegan"))
    assert header["arch"] == "stylegan" and header["labels"] == list(gen.label_names)
    assert "synthetic demo posters, not real films" in header["provenance"]["trained_on"]
    assert DEMO_FILE.stat().st_size < 2 * 2**20
    horror = sample(gen, "horror", 16, seed=0).mean().item()
    comedy = sample(gen, "comedy", 16, seed=0).mean().item()
    assert comedy - horror > 0.2  # the demo set's comedy is bright, its horror dark
    r = inproc("generators", "--json")
    assert "posters-stylegan" in {m["name"] for m in json.loads(r.out)["models"]}


def test_labelled_data_options_and_a_vocabulary_from_the_data_work_as_for_the_genre_cgan(
    tmp_path,
):
    """The same data options as the genre cGAN, and the genres of the data carried from the
    stream to the task and into the model, whose untrained genres are refused by name."""
    import numpy as np
    from PIL import Image

    from posterforge.errors import PosterforgeError
    from posterforge.weights import save_weights
    from posterforge_stylegan import StyleGAN
    from posterforge_stylegan.training import StyleGANRecipe, make_data, make_task

    host = plugins.get_host()
    assert host.families.get("stylegan").options == host.families.get("genre-cgan").options
    assert "label_column" in {o.key for o in host.families.get("stylegan").options}
    with pytest.raises(ValueError, match="min_usable must be"):
        StyleGANRecipe.from_dict({"min_usable": "most"})
    for genre, n in (("Film-Noir", 1), ("horror", 2)):
        (tmp_path / genre).mkdir()
        for i in range(n):
            Image.fromarray(np.full((16, 8, 3), 50 * i, np.uint8)).save(
                tmp_path / genre / f"{i}.png"
            )
    recipe = {**TINY, "labels_from_data": True}
    from posterforge.context import default_context

    stream = make_data({"data": tmp_path}, recipe, ctx=default_context())
    updates = stream.recipe_updates()
    stream.close()
    assert updates == {"label_names": ["horror", "film-noir"]}
    assert stream.summary()["label_counts"] == {"horror": 2, "film-noir": 1}
    task = make_task({**recipe, **updates}, ctx=default_context())
    tensors, header = task.export()
    assert header["labels"] == ["horror", "film-noir"] and header["vocabulary"]["noun"] == "genre"
    header["provenance"]["data"] = {"label_counts": {"horror": 2, "film-noir": 0}}
    save_weights(tmp_path / "m.safetensors", tensors, header)
    sampler = StyleGAN.build(load_weights(tmp_path / "m.safetensors"))
    assert sampler.caption("Horror") == "horror"
    with pytest.raises(PosterforgeError, match="'film-noir' had no training images"):
        sampler.caption("film noir")
