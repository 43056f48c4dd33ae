"""Backends: the calibration cache and its key, the fixed decision on resume, OpenVINO missing or
failing (torch with one note), ``--backend`` validation and the device line. No timing asserts:
where a test needs a calibration's outcome it says what the timings were."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge.api import translate
from posterforge.backends import OPENVINO, PLAIN, TORCH, calibration, choice
from posterforge.cli.run import engine_line
from posterforge.errors import PosterforgeError
from posterforge.jobs.translate import TranslateJob
from posterforge.outputs import RECORD
from posterforge.translation import load_engine

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16

processor\t: 1
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16
"""


def _frames(folder, n=4, size=(20, 16)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"f{i}.png")
    return folder


def _timed(seconds):
    """``calibration.fastest`` as if the machine had measured ``seconds`` in each of 3 rounds."""

    def fastest(candidates, **kw):
        for run in candidates.values():
            run()  # the candidates really run: a broken one would fail here
        return {name: [seconds[name]] * 3 for name in candidates}

    return fastest


def _never(candidates, **kw):
    raise AssertionError("calibrated again: a cached decision must be kept")


@pytest.fixture
def calibrated_small(monkeypatch):
    """Calibrate even the tiny test models."""
    monkeypatch.setattr(choice, "CALIBRATE_MIN_PARAMS", 0)


@pytest.fixture
def no_openvino(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # its import fails


def test_the_machine_key_is_the_cpu_its_flags_and_the_versions(monkeypatch):
    ident = calibration.cpu_identity(CPUINFO)
    assert ident == {"cpu": "AMD EPYC 9B45", "flags": "avx2 avx512_bf16 avx512f fpu sse2"}
    key = calibration.machine_key(CPUINFO)
    assert key == calibration.machine_key(CPUINFO) and len(key) == 16
    assert calibration.machine_key(CPUINFO.replace(" avx512_bf16", "")) != key
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert calibration.machine_key(CPUINFO) != key  # a new library is a new machine


def test_an_entry_names_the_architecture_shape_class_precision_and_device():
    key = calibration.entry_key("cyclegan-resnet:abc", "forward-b1-small", "fp32", "cpu")
    assert key.split()[1:] == ["cyclegan-resnet:abc", "forward-b1-small", "fp32", "cpu"]
    assert key.split()[0] == calibration.machine_key()


def test_the_first_decision_written_is_kept(pf_home):
    kept = calibration.remember("k", OPENVINO, {"torch": [1.0, 1.2, 1.1], "openvino": [0.5]})
    assert kept["path"] == OPENVINO and calibration.lookup("k") == kept
    assert (kept["seconds"], kept["rounds"]) == ({"torch": 1.1, "openvino": 0.5}, 3)
    assert kept["timings"]["torch"] == [1.0, 1.2, 1.1]  # every round: why it was chosen
    assert calibration.remember("k", TORCH, {"torch": [0.1]})["path"] == OPENVINO
    assert json.loads((pf_home / calibration.FILE).read_text())["k"]["path"] == OPENVINO


def test_torch_wins_unless_another_path_is_clearly_faster():
    assert calibration.winner({"torch": 1.0, "torch-plain": 0.97}) == TORCH
    assert calibration.winner({"torch": 1.0, "torch-plain": 0.8, "openvino": 0.6}) == OPENVINO


def test_a_resumed_job_takes_the_cached_path_and_writes_the_same_bytes(
    tiny_style, tmp_path, monkeypatch, calibrated_small, no_openvino
):
    src, out = _frames(tmp_path / "in"), tmp_path / "out"
    kw = dict(style=str(tiny_style), device="cpu", compile="off", backend="auto")
    monkeypatch.setattr(calibration, "fastest", _timed({TORCH: 2.0, PLAIN: 1.0}))
    assert {r.status for r in translate([src], out, **kw)} == {"ok"}
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    [settings] = json.loads((out / RECORD).read_text())["settings"].values()
    assert settings["backend"] == PLAIN  # not torch's bytes: the record says so
    for name in ("f1.png", "f3.png"):  # a killed run's missing outputs
        (out / name).unlink()
    monkeypatch.setattr(calibration, "fastest", _never)
    statuses = sorted(r.status for r in translate([src], out, **kw))
    assert statuses == ["ok", "ok", "skipped", "skipped"]
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first
    with pytest.raises(
        PosterforgeError, match=r"made with other settings \(--backend: torch-plain, now torch\)"
    ):
        translate([src], out, **{**kw, "backend": "torch"})


def test_torch_writes_what_it_always_wrote_and_records_no_backend(tiny_style, tmp_path):
    src, out = _frames(tmp_path / "in", n=1), tmp_path / "out"
    [rec] = translate([src], out, style=str(tiny_style), device="cpu", backend="torch")
    assert rec.status == "ok"
    [settings] = json.loads((out / RECORD).read_text())["settings"].values()
    assert "backend" not in settings  # outputs of earlier versions stay valid
    [again] = translate(
        [src], out, style=str(tiny_style), device="cpu", backend="auto"
    )  # auto: tiny -> torch
    assert again.status == "skipped"


def test_a_missing_openvino_falls_back_to_torch_with_one_note(tiny_style, no_openvino, caplog):
    x = torch.randint(0, 256, (1, 12, 16, 3), dtype=torch.uint8)
    engine = load_engine(str(tiny_style), device="cpu", backend="openvino", compile="off")
    torch_engine = load_engine(str(tiny_style), device="cpu", backend="torch", compile="off")
    assert torch.equal(engine(x), torch_engine(x))
    engine(x)
    notes = [r.getMessage() for r in caplog.records if "openvino" in r.getMessage()]
    assert notes == ["posterforge: note: openvino is not installed (pip install openvino); "
                     "running on torch"]  # fmt: skip
    assert "backend torch (openvino is not installed" in engine_line(engine, "cpu", 1)
    assert engine.choice.record() is None


def _failing_openvino(monkeypatch):
    """An OpenVINO that imports and converts but cannot compile (a broken CPU plugin)."""
    fake = types.ModuleType("openvino")
    fake.__version__ = "0.0-broken"

    class Model:
        def clone(self):
            return self

        def reshape(self, shapes):
            pass

    class Core:
        def set_property(self, props):
            pass

        def read_model(self, path):
            raise RuntimeError("no IR")

        def compile_model(self, model, device, config):
            raise RuntimeError("Cannot load library 'libopenvino_intel_cpu_plugin.so'\nstack")

    fake.Core, fake.PartialShape = Core, list
    fake.convert_model = lambda module, **kw: Model()
    fake.save_model = lambda *a, **kw: None
    monkeypatch.setitem(sys.modules, "openvino", fake)


def test_an_openvino_that_fails_to_compile_falls_back_in_one_line(
    inproc, tiny_style, tmp_path, monkeypatch, caplog
):
    _failing_openvino(monkeypatch)
    src, out = _frames(tmp_path / "in", n=2), tmp_path / "out"
    args = ["translate", str(src), "-o", str(out), "-s", str(tiny_style), "--device", "cpu"]
    r = inproc(*args, "--backend", "openvino")
    assert r.code == 0, r.err
    assert "Traceback" not in r.err
    notes = [r.getMessage() for r in caplog.records if "note:" in r.getMessage()]
    assert notes == [
        "posterforge: note: openvino could not compile it: Cannot load library "
        "'libopenvino_intel_cpu_plugin.so'; running on torch"
    ]
    assert "backend torch (openvino could not compile it" in r.err
    again = inproc(*args, "--backend", "torch")  # torch's bytes: skipped, not refused
    assert again.code == 0 and len(again.out.split()) == 0, again.err


def test_auto_leaves_out_an_openvino_that_fails(tiny_style, monkeypatch, calibrated_small, caplog):
    _failing_openvino(monkeypatch)
    monkeypatch.setattr(calibration, "fastest", _timed({TORCH: 1.0, PLAIN: 2.0}))
    engine = load_engine(str(tiny_style), device="cpu", backend="auto", compile="off")
    engine(torch.zeros((1, 16, 16, 3), dtype=torch.uint8))
    assert engine.choice.line().startswith("backend torch (calibrated ")
    assert sum("could not compile" in r.getMessage() for r in caplog.records) == 1


def test_backend_is_checked_in_one_line(inproc, tiny_style, tmp_path):
    with pytest.raises(
        PosterforgeError, match="invalid backend 'fast': use auto, torch or openvino"
    ):
        TranslateJob(("x.png",), tmp_path, backend="fast")  # type: ignore[arg-type]
    r = inproc("translate", str(tmp_path), "-o", str(tmp_path / "o"), "--backend", "fast")
    assert r.code == 2 and "invalid --backend 'fast'" in r.err  # as typed on the command line
    assert len(r.err.strip().splitlines()) == 1
    r = inproc("generate", "-n", "1", "-o", str(tmp_path / "g"), "--backend", "gpu")
    assert r.code == 2 and "invalid --backend 'gpu'" in r.err


def test_the_device_line_names_the_path(inproc, tiny_style, tmp_path, monkeypatch, no_openvino):
    src = _frames(tmp_path / "in", n=1)
    base = ["translate", str(src), "-s", str(tiny_style), "--device", "cpu"]
    r = inproc(*base, "-o", str(tmp_path / "a"), "--backend", "torch")
    # the default torch path: the line as it always was, but for what --precision auto took
    assert "precision fp32 (auto: no native bf16 here), batch size 1" in r.err
    r = inproc(*base, "-o", str(tmp_path / "a2"), "--backend", "torch", "--precision", "fp32")
    assert "precision fp32, batch size 1" in r.err
    r = inproc(*base, "-o", str(tmp_path / "b"), "--backend", "auto")
    assert "backend torch (a small model: not calibrated)" in r.err
    monkeypatch.setattr(choice, "CALIBRATE_MIN_PARAMS", 0)
    monkeypatch.setattr(calibration, "fastest", _timed({TORCH: 2.0, PLAIN: 1.0}))
    r = inproc(*base, "-o", str(tmp_path / "c"), "--backend", "auto")
    assert "backend torch-plain (calibrated 20" in r.err


def test_a_family_that_does_not_export_stays_on_torch(tiny_style, monkeypatch, caplog):
    from posterforge_cyclegan import CycleGANResnet

    monkeypatch.setattr(CycleGANResnet, "exportable", False)
    engine = load_engine(str(tiny_style), device="cpu", backend="openvino", compile="off")
    engine(torch.zeros((1, 16, 16, 3), dtype=torch.uint8))
    assert engine.choice.line() == "backend torch (openvino: this model family does not export)"


# -- with OpenVINO installed (make install brings it) ---------------------------------------------


def test_openvino_translates_within_a_grey_level_of_torch_and_caches_its_model(
    tiny_style, pf_home, monkeypatch
):
    pytest.importorskip("openvino")
    from posterforge.backends.openvino import OpenVINOPath

    x = torch.randint(0, 256, (2, 21, 30, 3), dtype=torch.uint8)
    want = load_engine(str(tiny_style), device="cpu", backend="torch", compile="off")(x)
    engine = load_engine(str(tiny_style), device="cpu", backend="openvino", compile="off")
    got = engine(x)
    assert engine.choice.line() == "backend openvino (asked)"
    assert (got.int() - want.int()).abs().max() <= 1
    assert list((pf_home / "openvino" / "models").glob("*.xml"))
    monkeypatch.setattr(OpenVINOPath, "_convert", lambda *a: pytest.fail("converted again"))
    again = load_engine(str(tiny_style), device="cpu", backend="openvino", compile="off")
    assert torch.equal(again(x), got)  # read from the home, same bytes


def test_openvino_samples_a_generator_like_torch(tmp_path):
    pytest.importorskip("openvino")
    from posterforge import presets
    from posterforge.generation import load_generator
    from posterforge.plugins import get_host
    from posterforge.weights import make_header, save_weights
    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreGenerator

    torch.manual_seed(0)
    names = list(presets.labels("genres", get_host()).names)
    net = GenreGenerator(GenreConfig(z_dim=100, ngf=8, image_size=(64, 128)), len(names))
    config = {"z_dim": 100, "ngf": 8, "image_size": [64, 128]}
    header = make_header("generator", "genre-cgan", config, labels=names)
    path = tmp_path / "g.safetensors"
    save_weights(path, net.state_dict(), header)
    gens = {b: load_generator(str(path), device="cpu", backend=b) for b in ("torch", "openvino")}
    z = torch.randn(3, 100)
    labels = gens["torch"].label_names
    cond = None if labels is None else gens["torch"].conditions(labels[0], 3)
    want, got = (gens[b](z, cond) for b in ("torch", "openvino"))
    assert gens["openvino"].engine.choice.line() == "backend openvino (asked)"
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_warmup_calibrates_ahead_so_the_first_run_does_not(
    inproc, tiny_style, tmp_path, monkeypatch, calibrated_small, no_openvino
):
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # compiling is not the point here
    monkeypatch.setattr(calibration, "fastest", _timed({TORCH: 2.0, PLAIN: 1.0}))
    r = inproc("warmup", "--style", str(tiny_style), "--size", "20x16", "--device", "cpu",
               "--backend", "auto")  # fmt: skip
    assert r.code == 0, r.err
    assert "backend torch-plain (calibrated " in r.err and ", 2.00x torch)" in r.err
    # and why: the timings the calibration kept
    assert "posterforge: calibration forward-b" in r.err
    assert "-small: torch-plain 1.000 s against torch 2.000 s (median of 3 rounds, 20" in r.err
    monkeypatch.setattr(calibration, "fastest", _never)
    src = _frames(tmp_path / "in", n=1)
    r = inproc("translate", str(src), "-o", str(tmp_path / "o"), "-s", str(tiny_style),
               "--device", "cpu", "--backend", "auto")  # fmt: skip
    assert r.code == 0 and "backend torch-plain (calibrated " in r.err, r.err


# one conversion each, as in the test above; asked goes the same way as auto's calibration
@pytest.mark.parametrize("backend", ["auto", pytest.param("openvino", marks=pytest.mark.slow)])
def test_bf16_takes_openvino_in_a_fresh_home(
    backend, tiny_style, tmp_path, pf_home, monkeypatch, calibrated_small
):
    """The conversion ran under bf16 autocast and failed (issue 21): it traces with autocast
    off, and the converted model is kept per precision, so no fp32 run has to come first."""
    pytest.importorskip("openvino")
    assert not (pf_home / "openvino").exists()  # nothing converted before
    monkeypatch.setattr(calibration, "fastest", _timed({TORCH: 2.0, PLAIN: 2.0, OPENVINO: 1.0}))
    src, out = _frames(tmp_path / "in", n=1), tmp_path / "out"
    kw = dict(style=str(tiny_style), device="cpu", compile="off", backend=backend)
    [rec] = translate([src], out, precision="bf16", **kw)
    assert rec.status == "ok"
    [settings] = json.loads((out / RECORD).read_text())["settings"].values()
    assert (settings["backend"], settings["precision"]) == (OPENVINO, "bf16")
    assert len(list((pf_home / "openvino" / "models").glob("*.xml"))) == 1


def test_the_converted_model_is_kept_per_precision(tiny_style):
    pytest.importorskip("openvino")
    from posterforge.backends.openvino import OpenVINOPath

    engine = load_engine(str(tiny_style), device="cpu", backend="openvino", compile="off")
    paths = {
        p: OpenVINOPath(engine.plain, "forward", p, engine.model_id)._ir_path()
        for p in ("fp32", "bf16")
    }
    assert paths["fp32"] != paths["bf16"] and paths["fp32"].parent == paths["bf16"].parent
