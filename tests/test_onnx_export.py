"""``posterforge weights export NAME --format onnx``: the file ONNX Runtime runs matches torch
(a translator at a fixed size and at two dynamic sizes, the genre cGAN), its metadata says how to
feed it, and every refusal (a family that does not export, a bad --size, an existing --out, no
onnx package, a mismatch beyond the tolerance) is one line that writes nothing."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from posterforge import onnx_export  # noqa: E402
from posterforge.api import export_weights  # noqa: E402
from posterforge.errors import PosterforgeError  # noqa: E402


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _metadata(path):
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _translator(path):
    from posterforge.translation import load_engine

    return load_engine(str(path), device="cpu", backend="torch", compile="off").plain


@pytest.fixture
def tiny_generator(small_genre_generator):
    return small_genre_generator


def test_a_translator_at_a_fixed_size_matches_torch(inproc, tiny_style, tmp_path):
    out = tmp_path / "tiny.onnx"
    r = inproc("weights", "export", str(tiny_style), "--format", "onnx", "--size", "32x20",
               "--out", str(out))  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.strip() == str(out)
    assert "onnxruntime" in r.err and "matches torch within" in r.err
    meta = _metadata(out)
    assert meta["posterforge.kind"] == "translator"
    assert meta["posterforge.arch"] == "cyclegan-resnet"
    assert meta["posterforge.size"] == "32x20"
    assert meta["posterforge.size_multiple"] == "4"
    assert json.loads(meta["posterforge.inputs"])[0]["range"] == [0, 1]
    assert json.loads(meta["posterforge.dynamic_axes"])["image"] == {"0": "batch"}
    from posterforge.version import __version__
    from posterforge.weights import sha256_file

    assert meta["posterforge.sha256"] == sha256_file(tiny_style)
    assert meta["posterforge.version"] == __version__
    assert float(json.loads(meta["posterforge.check"])["max_abs_diff"]) <= onnx_export.TOLERANCE
    session = _session(out)
    assert [d for d in session.get_inputs()[0].shape][1:] == [3, 20, 32]
    x = torch.rand(3, 3, 20, 32, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        want = _translator(tiny_style)(x).numpy()
    got = session.run(None, {"image": x.numpy()})[0]
    assert np.abs(got - want).max() <= onnx_export.TOLERANCE


def test_a_dynamic_translator_runs_at_two_sizes_like_torch(tiny_style, tmp_path):
    out = tmp_path / "dyn.onnx"
    done = export_weights(str(tiny_style), out, dynamic=True)
    assert done.path == out and done.max_abs_diff <= onnx_export.TOLERANCE
    assert len(done.probes) == 2  # checked at two sizes already, both unlike the trace's
    assert _metadata(out)["posterforge.size"] == "dynamic"
    session, net = _session(out), _translator(tiny_style)
    gen = torch.Generator().manual_seed(1)
    for shape in [(1, 3, 16, 20), (2, 3, 36, 52)]:
        x = torch.rand(shape, generator=gen)
        with torch.inference_mode():
            want = net(x).numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == shape
        assert np.abs(got - want).max() <= onnx_export.TOLERANCE


def test_the_genre_cgan_matches_torch_and_says_how_to_condition_it(tiny_generator, tmp_path):
    from posterforge.sampling import load_generator, noise

    out = tmp_path / "gen.onnx"
    export_weights(str(tiny_generator), out)
    meta = _metadata(out)
    labels = json.loads(meta["posterforge.labels"])
    assert meta["posterforge.label_count"] == str(len(labels)) and meta["posterforge.z_dim"] == "16"
    assert meta["posterforge.size"] == "64x128"
    rows = json.loads(meta["posterforge.conditions"])
    gen = load_generator(str(tiny_generator), device="cpu", compile="off")
    z = noise([0, 1, 2, 3], 16, seed=7)
    spec = labels[3]
    assert rows[spec] == gen.conditions(spec, 1)[0].tolist()
    cond = torch.tensor([rows[spec]] * 4, dtype=torch.float32)
    want = gen(z, gen.conditions(spec, 4)).numpy()
    got = _session(out).run(None, {"z": z.numpy(), "conditions": cond.numpy()})[0]
    assert got.shape == (4, 3, 128, 64)
    assert np.abs(got - want).max() <= onnx_export.TOLERANCE


def test_stylegan_is_refused_naming_the_capability(inproc, tmp_path):
    out = tmp_path / "s.onnx"
    r = inproc("weights", "export", "posters-stylegan", "--out", str(out))
    assert r.code != 0
    assert r.err.strip().count("\n") == 0 and "exportable" in r.err, r.err
    assert "Traceback" not in r.err and not out.exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--size", "30x30"], "multiples of 4"),
        (["--size", "abc"], "invalid size 'abc'"),
        (["--size", "256"], "WxH"),
        (["--size", "32x32", "--dynamic"], "exclude each other"),
        (["--format", "tflite"], "invalid --format 'tflite'"),
    ],
)
def test_a_bad_size_or_format_is_one_line(inproc, tiny_style, tmp_path, args, said):
    out = tmp_path / "t.onnx"
    r = inproc("weights", "export", str(tiny_style), "--out", str(out), *args)
    assert r.code != 0 and said in r.err, r.err
    assert r.err.strip().count("\n") == 0 and not list(tmp_path.iterdir())


def test_a_generator_refuses_a_size(inproc, tiny_generator, tmp_path):
    r = inproc("weights", "export", str(tiny_generator), "--size", "64x128",
               "--out", str(tmp_path / "g.onnx"))  # fmt: skip
    assert r.code != 0 and "--size is for translators" in r.err, r.err
    assert not (tmp_path / "g.onnx").exists()


def test_an_existing_out_needs_overwrite(inproc, tiny_style, tmp_path):
    out = tmp_path / "t.onnx"
    out.write_bytes(b"mine")
    r = inproc("weights", "export", str(tiny_style), "--out", str(out))
    assert r.code != 0 and "pass --overwrite" in r.err and out.read_bytes() == b"mine"
    r = inproc("weights", "export", str(tiny_style), "--out", str(out), "--overwrite")
    assert r.code == 0, r.err
    assert _metadata(out)["posterforge.arch"] == "cyclegan-resnet"
    r = inproc("weights", "export", str(tiny_style), "--out", str(tmp_path / "t.bin"))
    assert r.code != 0 and "end the file name in .onnx" in r.err


def test_a_missing_onnx_package_is_one_line(inproc, tiny_style, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # its import fails
    out = tmp_path / "t.onnx"
    r = inproc("weights", "export", str(tiny_style), "--out", str(out))
    assert r.code != 0 and "needs the onnx package" in r.err, r.err
    assert r.err.strip().count("\n") == 0 and "Traceback" not in r.err and not out.exists()


def test_a_mismatch_beyond_the_tolerance_writes_nothing(tiny_style, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # any difference, even none, is too much
    out = tmp_path / "t.onnx"
    with pytest.raises(PosterforgeError, match=r"not written: onnxruntime .* differs from torch"):
        export_weights(str(tiny_style), out)
    assert not list(tmp_path.iterdir())  # no file, no temp file


def test_a_style_or_a_generator_name_resolves_to_its_kind():
    from posterforge.catalog import resolve_any
    from posterforge.context import default_context
    from posterforge.records import Kind

    ctx = default_context()
    style = resolve_any("vintage", ctx.host, ctx.store)  # a style preset naming its weights
    assert (style.kind, style.cls.name) == (Kind.TRANSLATOR, "cyclegan-resnet")
    gen = resolve_any("posters-demo", ctx.host, ctx.store)  # a plugin's shipped generator
    assert (gen.kind, gen.cls.name) == (Kind.GENERATOR, "genre-cgan") and gen.sha256
