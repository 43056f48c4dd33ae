"""``posterforge eval --model STYLE --a A --b B``: a finished translator scored on two folders
with the metrics CycleGAN computes while training (one implementation); bad folders are one
line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from posterforge.evaluation import metrics
from posterforge.evaluation.translation import translator_metrics
from posterforge.images import encode_atomic
from tests.test_generator_metrics import Means


@pytest.fixture
def tiny_extractor(monkeypatch):
    monkeypatch.setattr(
        "posterforge.evaluation.features.default_extractor", lambda where, name=None: Means()
    )


def _folder(path, n, tint):
    rng = np.random.default_rng(tint)
    for i in range(n):
        rgb = np.clip(rng.integers(-40, 40, (40, 36, 3)) + tint, 0, 255).astype(np.uint8)
        encode_atomic(rgb, path / f"{i:02d}.png")
    return path


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("domains")
    return _folder(root / "a", 12, 200), _folder(root / "b", 10, 60)


def test_translator_metrics_of_an_identity_are_the_folders_own_distance():
    a, b = torch.rand(12, 3, 16, 16), torch.rand(10, 3, 16, 16) * 0.5
    same = translator_metrics(lambda x: x, lambda x: x, a, b, extractor=Means(), batch_size=5)
    fa, fb = Means()(a).double(), Means()(b).double()
    assert same["cycle_a"] == same["cycle_b"] == 0.0
    assert same["fid_a2b"] == pytest.approx(metrics.fid(fb, fa))
    assert same["fid_b2a"] == pytest.approx(metrics.fid(fa, fb))
    one_way = translator_metrics(lambda x: 1 - x, None, a, b, extractor=Means())
    assert set(one_way) == {"fid_a2b"}
    assert one_way["fid_a2b"] == pytest.approx(metrics.fid(fb, Means()(1 - a).double()))


@pytest.mark.slow
def test_eval_scores_a_translator_one_way_and_both_ways(
    tiny_style, domains, inproc, tiny_extractor
):
    a, b = domains
    base = ["eval", "--model", str(tiny_style), "--a", str(a), "--b", str(b), "--size", "32",
            "--device", "cpu"]  # fmt: skip
    r = inproc(*base, "--json")
    assert r.code == 0, r.err
    record = json.loads(r.out)
    assert (record["n_a"], record["n_b"], record["extractor"]) == (12, 10, "means")
    assert set(record["values"]) == {"fid_a2b"} and record["values"]["fid_a2b"] > 0
    r = inproc(*base, "--reverse", str(tiny_style))
    assert r.code == 0, r.err
    for key in ("fid_a2b [means]", "fid_b2a [means]", "cycle_a [means]", "cycle_b [means]"):
        assert key in r.out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--a", "{a}"], "a translator is measured on two folders: give --a and --b"),
        (["--a", "{a}", "--b", "{missing}"], "--b {missing}: folder not found"),
        (["--a", "{few}", "--b", "{b}"], "--a {few}: 3 readable of 3 images; the FID needs at "
         "least 10 a folder"),
        (["--a", "{empty}", "--b", "{b}"], "--a {empty}: no images; the FID needs at least 10"),
        (["--a", "{a}", "--b", "{b}", "--data", "{b}"], "--data, --labels and --label measure a "
         "generator"),
        (["--reverse", "x", "--data", "{b}"], "--reverse measures a translator"),
    ],
)  # fmt: skip
def test_eval_refuses_bad_folders_in_one_line(
    args, said, tiny_style, domains, tmp_path, inproc, tiny_extractor
):
    a, b = domains
    empty = tmp_path / "empty"
    empty.mkdir()
    names = {"a": a, "b": b, "missing": tmp_path / "nope", "few": _folder(tmp_path / "few", 3, 9),
             "empty": empty}  # fmt: skip
    args = [x.format(**names) for x in args]
    r = inproc("eval", "--model", str(tiny_style), *args, "--size", "32", "--device", "cpu")
    assert r.code != 0
    assert said.format(**names) in r.err and len(r.err.strip().splitlines()) == 1, r.err
