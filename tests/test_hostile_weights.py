"""Hostile or broken weight files: every crafted header is one line (exit 2) within a second,
and nothing builds a network larger than the file's tensors allow."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save

from posterforge.errors import PosterforgeError

from .conftest import run_inprocess


def _tiny_translator() -> tuple[dict[str, torch.Tensor], dict]:
    from posterforge_cyclegan.config import ResnetConfig
    from posterforge_cyclegan.network import ResnetGenerator

    net = ResnetGenerator(ResnetConfig(ngf=4, n_blocks=1, affine=True))
    config = net.config.to_dict()
    header = {"format": 1, "kind": "translator", "arch": "cyclegan-resnet", "config": config}
    return net.state_dict(), header


def _tiny_generator() -> tuple[dict[str, torch.Tensor], dict]:
    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreGenerator

    net = GenreGenerator(GenreConfig(z_dim=8, ngf=4), n_labels=2)
    config = {"z_dim": 8, "ngf": 4, "image_size": [64, 128]}
    return net.state_dict(), {
        "format": 1, "kind": "generator", "arch": "genre-cgan", "config": config,
        "labels": ["calm", "tense"],
    }  # fmt: skip


def _write(path, tensors, meta) -> None:
    raw = meta if isinstance(meta, str) else json.dumps(meta)
    path.write_bytes(save({k: v.contiguous() for k, v in tensors.items()}, {"posterforge": raw}))


def _with(header: dict, **config) -> dict:
    return {**header, "config": {**header["config"], **config}}


T_TENSORS, T = _tiny_translator()
G_TENSORS, G = _tiny_generator()
FOUR = {k: v for k, v in T_TENSORS.items() if k.startswith("stem")}

# (id, kind, tensors, header or raw JSON text, what the one line says)
CASES = [
    ("arch-list", "translator", T_TENSORS, {**T, "arch": ["cyclegan-resnet"]}, "arch is not"),
    ("kind-wrong", "translator", T_TENSORS, {**T, "kind": "painter"}, "kind 'painter'"),
    ("kind-other", "translator", G_TENSORS, G, "holds a generator"),
    ("header-array", "translator", T_TENSORS, "[1, 2, 3]", "JSON list, not an object"),
    ("deep-json", "translator", T_TENSORS, "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("not-json", "translator", T_TENSORS, "{not json", "corrupt posterforge header"),
    ("no-format", "translator", T_TENSORS, {k: v for k, v in T.items() if k != "format"},
     "unsupported weight format"),
    ("config-list", "translator", T_TENSORS, {**T, "config": [4, 1]}, "config is not an object"),
    ("ngf-string", "translator", T_TENSORS, _with(T, ngf="abc"), "config ngf must be"),
    ("ngf-float", "translator", T_TENSORS, _with(T, ngf=4.5), "config ngf must be"),
    ("ngf-huge", "translator", T_TENSORS, _with(T, ngf=8000), "config ngf must be"),
    ("blocks-huge", "translator", T_TENSORS, _with(T, n_blocks=10_000_000), "n_blocks must be"),
    ("blocks-negative", "translator", T_TENSORS, _with(T, n_blocks=-1), "n_blocks must be"),
    ("affine-string", "translator", T_TENSORS, _with(T, affine="yes"), "affine must be true"),
    ("unknown-key", "translator", T_TENSORS, _with(T, evil=1), "unknown config keys 'evil'"),
    ("shape-mismatch", "translator", T_TENSORS, _with(T, ngf=8), "has shape"),
    ("too-many-blocks", "translator", T_TENSORS, _with(T, n_blocks=3), "tensors missing"),
    ("tensors-missing", "translator", FOUR, T, "tensors missing"),
    ("no-tensors", "translator", {}, T, "holds no tensors"),
    ("unknown-arch", "translator", T_TENSORS, {**T, "arch": "nope"}, "unknown translator 'nope'"),
    ("z-string", "generator", G_TENSORS, _with(G, z_dim="abc"), "config z_dim must be"),
    ("z-missing", "generator", G_TENSORS,
     {**G, "config": {"ngf": 4}}, "config lacks 'z_dim'"),
    ("labels-string", "generator", G_TENSORS, {**G, "labels": "calm"}, "labels are not a list"),
    ("labels-numbers", "generator", G_TENSORS, {**G, "labels": [1, 2]}, "labels are not a list"),
    ("labels-repeat", "generator", G_TENSORS, {**G, "labels": ["a", "a"]}, "repeat a name"),
    ("labels-count", "generator", G_TENSORS, {**G, "labels": ["a", "b", "c"]}, "has shape"),
    ("labels-none", "generator", G_TENSORS, {**G, "labels": []}, "1 to 10000 label names"),
    ("gen-shape", "generator", G_TENSORS, _with(G, ngf=16), "has shape"),
    ("gen-as-style", "generator", T_TENSORS, T, "holds a translator"),
    ("stylegan-cdim", "generator", G_TENSORS,
     {**G, "arch": "stylegan", "config": {"z_dim": 8, "c_dim": 5, "w_dim": 8}}, "c_dim 5"),
    ("stylegan-size", "generator", G_TENSORS,
     {**G, "arch": "stylegan", "config": {"z_dim": 8, "c_dim": 2, "w_dim": 8,
                                          "image_size": [64, "x"]}}, "image_size must be"),
    ("stylegan-huge", "generator", G_TENSORS,
     {**G, "arch": "stylegan", "config": {"z_dim": 8, "c_dim": 2, "w_dim": 10**9}},
     "w_dim must be"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "tensors", "meta", "says"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_crafted_weight_file_is_one_clear_error(tmp_path, kind, tensors, meta, says):
    from posterforge.generation import load_generator
    from posterforge.translation import load_engine

    path = tmp_path / "crafted.safetensors"
    _write(path, tensors, meta)
    start = time.perf_counter()
    with pytest.raises(PosterforgeError) as err:
        if kind == "translator":
            load_engine(str(path), device="cpu")
        else:
            load_generator(str(path), device="cpu")
    assert time.perf_counter() - start < 5  # bounded: nothing big was built
    message = str(err.value)
    assert says in message and "\n" not in message, message


def test_a_truncated_file_is_one_line(tmp_path):
    path = tmp_path / "cut.safetensors"
    _write(path, T_TENSORS, T)
    path.write_bytes(path.read_bytes()[:300])
    r = run_inprocess("translate", str(path), "--style", str(path), "--out", str(tmp_path / "o"))
    assert r.code == 2 and r.err.count("\n") == 1 and "Traceback" not in r.err, r.err


@pytest.mark.slow
def test_crafted_files_through_the_cli(tmp_path):
    for name, meta in (("big", _with(T, n_blocks=10_000_000)), ("deep", "[" * 100_000)):
        path = tmp_path / f"{name}.safetensors"
        _write(path, T_TENSORS, meta)
        img = tmp_path / "x.png"
        from PIL import Image

        Image.new("RGB", (8, 8)).save(img)
        r = run_inprocess("translate", str(img), "--style", str(path), "--out", str(tmp_path / "o"))
        assert r.code == 2 and r.err.startswith("posterforge: error: "), r.err
        assert r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    r = run_inprocess("generate", "--model", str(tmp_path / "big.safetensors"), "-n", "1",
                      "--out", str(tmp_path / "g"))  # fmt: skip
    assert r.code == 2 and "holds a translator" in r.err, r.err
