"""``train export RUN --direction b2a``: a CycleGAN run trains both generators, and either one can
be stored as a style; the family declares what it exports, the core names no family."""

from __future__ import annotations

import json

import pytest
import torch

from posterforge.errors import PosterforgeError
from posterforge.family import Family
from posterforge.records import Kind
from posterforge.training import run
from posterforge.training.checkpoints import list_checkpoints, load_checkpoint
from posterforge.weights import load_weights
from tests.test_cyclegan_training import TINY, write_domain


@pytest.fixture
def finished(tmp_path, pf_home):
    a = write_domain(tmp_path / "a", "A", 4, seed=1)
    b = write_domain(tmp_path / "b", "B", 4, seed=2)
    overrides = [f"{k}={json.dumps(v)}" for k, v in TINY.items()]
    run.train("translator", {"a": a, "b": b}, "both", tmp_path / "run", overrides=overrides,
              max_steps=1, device="cpu")  # fmt: skip
    return tmp_path / "run"


def test_either_direction_of_a_cyclegan_run_is_stored_as_a_style(finished, inproc):
    r = inproc("train", "export", str(finished), "--name", "back", "--direction", "b2a")
    assert r.code == 0, r.err
    back = load_weights(r.out.strip())
    there = load_weights(run.export(finished, "there", direction="a2b"))
    assert back.header["provenance"]["direction"] == "B->A"
    assert there.header["provenance"]["direction"] == "A->B"
    state = load_checkpoint(list_checkpoints(finished)[-1][1])["task"]
    for key, value in state["G_BA"].items():  # G_BA's weights, not G_AB's
        assert torch.equal(back.tensors[key], value)
    assert any(not torch.equal(back.tensors[k], there.tensors[k]) for k in back.tensors)
    r = inproc("styles")  # stored as a style, by its name
    assert "back" in r.out and r.code == 0

    r = inproc("train", "export", str(finished), "--name", "x", "--direction", "ba")
    assert r.code == 2
    assert "cyclegan has no export direction 'ba' (it offers: a2b, b2a)" in r.err


def test_a_family_that_exports_one_model_refuses_a_direction():
    family = Family("one", Kind.GENERATOR, "d", (), "m:f", "m:g")
    assert family.export_method(None) == "export"
    with pytest.raises(PosterforgeError, match="it offers: none: it exports one model"):
        family.export_method("b2a")
