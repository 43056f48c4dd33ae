"""``--precision auto``: bf16 only where the device computes it natively and the probe keeps it
within 2 grey levels of fp32, decided once per machine and model and kept in the home, so a
resumed job writes the same bytes. The CPU's flags are faked (conftest makes every test a CPU
without native bf16 unless it says otherwise); no timing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge.api import translate
from posterforge.backends import calibration
from posterforge.backends import precision as auto
from posterforge.errors import PosterforgeError
from posterforge.jobs.translate import TranslateJob
from posterforge.outputs import RECORD
from posterforge.translation import load_engine

FLAGS = "fpu sse2 avx2 avx512f avx512_bf16"


@pytest.fixture
def native(monkeypatch):
    """A CPU with AVX512-BF16 (its flags as /proc/cpuinfo would list them)."""
    monkeypatch.setattr(auto, "NATIVE_FLAGS", ("amx_bf16", "avx512_bf16"))
    monkeypatch.setattr(calibration, "cpu_identity", lambda cpuinfo=None: _cpu("Zen 5"))


def _cpu(model: str) -> dict[str, str]:
    return {"cpu": model, "flags": FLAGS}


def _probe(monkeypatch, diff):
    calls = []

    def probe(engine):
        calls.append(engine.model_id)
        return diff

    monkeypatch.setattr(auto, "probe_difference", probe)
    return calls


def _frames(folder, n=2):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"f{i}.png")
    return folder


def test_native_bf16_is_read_from_the_cpu_flags(native):
    cpu = torch.device("cpu")
    assert auto.native_bf16(cpu, "fpu avx2 avx512f avx512_bf16") == "avx512_bf16"
    assert auto.native_bf16(cpu, "fpu avx512f amx_tile amx_bf16") == "amx_bf16"
    assert auto.native_bf16(cpu, "fpu sse2 avx2 fma") is None  # AVX2: bf16 is emulated, slower
    assert auto.native_bf16(torch.device("mps"), FLAGS) is None


def test_auto_takes_bf16_where_native_and_the_probe_agrees(tiny_style, native, monkeypatch):
    _probe(monkeypatch, 1.0)
    engine = load_engine(str(tiny_style), device="cpu", precision="auto", compile="off")
    assert engine.precision == "bf16" and engine.autocast_dtype == torch.bfloat16
    assert engine.precision_how == "auto: native avx512_bf16, probe within 2 grey levels"


def test_auto_is_fp32_without_native_bf16_and_never_probes(tiny_style, monkeypatch):
    calls = _probe(monkeypatch, 0.0)
    engine = load_engine(str(tiny_style), device="cpu", precision="auto", compile="off")
    assert (engine.precision, engine.precision_how) == ("fp32", "auto: no native bf16 here")
    assert calls == []


def test_a_probe_over_two_grey_levels_stays_on_fp32_with_one_note(
    tiny_style, native, monkeypatch, caplog
):
    _probe(monkeypatch, 2.5)
    engine = load_engine(str(tiny_style), device="cpu", precision="auto", compile="off")
    assert (engine.precision, engine.precision_how) == ("fp32", "auto: bf16 refused by the probe")
    notes = [r.getMessage() for r in caplog.records if "staying on fp32" in r.getMessage()]
    assert notes == [
        "posterforge: note: bf16 differs from fp32 by 2.5 grey levels at the 99th percentile on "
        "this model's probe (more than 2): staying on fp32 (--precision bf16 to use it anyway)"
    ]


def test_the_real_probe_is_deterministic_and_measures_grey_levels(tiny_style):
    # a bf16 engine holds the module as built (the probe runs before any fp32-only variant)
    engine = load_engine(str(tiny_style), device="cpu", precision="bf16", compile="off")
    x, conditions = auto.probe_input(engine)
    assert conditions is None and x.shape == (1, 3, 128, 128) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, auto.probe_input(engine)[0])  # the same pixels every time
    diff = auto.probe_difference(engine)
    assert diff == auto.probe_difference(engine) and 0 <= diff <= 255


def test_the_probe_of_a_conditional_generator(native):
    from posterforge.sampling import load_generator

    gen = load_generator(device="cpu", precision="fp32", compile="off")
    z, conditions = auto.probe_input(gen.engine)
    assert z.shape == (auto.PROBE_BATCH, gen.z_dim) and conditions is not None
    assert conditions.shape[0] == auto.PROBE_BATCH
    assert 0 <= auto.probe_difference(gen.engine) <= 255


def test_the_decision_is_kept_per_machine_and_model(tiny_style, native, monkeypatch, pf_home):
    calls = _probe(monkeypatch, 3.0)
    first = load_engine(str(tiny_style), device="cpu", precision="auto", compile="off")
    kept = json.loads((pf_home / auto.FILE).read_text())
    assert [e["precision"] for e in kept.values()] == ["fp32"] and kept[auto.decision_key(first)]
    _probe(monkeypatch, 0.0)  # the machine would now say bf16: the kept decision holds
    again = load_engine(str(tiny_style), device="cpu", precision="auto", compile="off")
    assert again.precision == "fp32" and len(calls) == 1
    key = auto.decision_key(again)
    monkeypatch.setattr(calibration, "cpu_identity", lambda cpuinfo=None: _cpu("another"))
    assert auto.decision_key(again) != key  # another CPU is another machine
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert auto.decision_key(again) not in (key, None)


def test_a_resumed_auto_job_decides_the_same_and_writes_the_same_bytes(
    inproc, tiny_style, native, monkeypatch, tmp_path
):
    _probe(monkeypatch, 0.5)
    src, out = _frames(tmp_path / "in"), tmp_path / "out"
    cmd = ["translate", str(src), "-o", str(out), "-s", str(tiny_style), "--device", "cpu"]
    r = inproc(*cmd)
    assert r.code == 0, r.err
    assert "precision bf16 (auto: native avx512_bf16, probe within 2 grey levels)" in r.err
    record = json.loads((out / RECORD).read_text())
    assert [s["precision"] for s in record["settings"].values()] == ["bf16"]  # not "auto"
    made = (out / "f1.png").read_bytes()
    (out / "f1.png").unlink()
    monkeypatch.setattr(auto, "probe_difference", lambda e: pytest.fail("probed again"))
    r = inproc(*cmd)
    assert r.code == 0 and "translated 1, skipped 1" in r.err, r.err
    assert (out / "f1.png").read_bytes() == made
    r = inproc(*cmd, "--precision", "fp32")  # another precision asked: refused, as before
    assert r.code != 0 and "(--precision: bf16, now fp32)" in r.err


def test_a_bad_precision_is_one_line(inproc, tiny_style, tmp_path):
    with pytest.raises(PosterforgeError, match="invalid precision 'fast': use auto, fp32, fp16"):
        TranslateJob(("x.png",), tmp_path, precision="fast")  # type: ignore[arg-type]
    with pytest.raises(PosterforgeError, match="invalid precision 'fast'"):
        translate([tmp_path], tmp_path / "o", style=str(tiny_style), precision="fast")  # type: ignore[arg-type]
    for cmd in (
        ("translate", str(tmp_path), "-o", str(tmp_path / "o")),
        ("generate", "-n", "1", "-o", str(tmp_path / "g")),
        ("warmup", "--style", str(tiny_style), "--size", "16x16"),
    ):
        r = inproc(*cmd, "--precision", "fast")
        assert r.code != 0 and "Traceback" not in r.err, r.err
        assert len(r.err.strip().splitlines()) == 1 and "'fast'" in r.err, r.err


def test_auto_follows_the_precision_the_outputs_in_out_were_made_with(
    inproc, tiny_style, native, monkeypatch, tmp_path
):
    """A folder made in fp32 (by an earlier version, whose default it was): auto, which takes
    bf16 here, goes on in fp32 and writes the same bytes; an explicit other one is refused."""
    calls = _probe(monkeypatch, 0.5)  # auto would take bf16 on this machine
    src, out = _frames(tmp_path / "in", n=3), tmp_path / "out"
    cmd = ["translate", str(src), "-o", str(out), "-s", str(tiny_style), "--device", "cpu"]
    r = inproc(*cmd, "--precision", "fp32")
    assert r.code == 0, r.err
    made = (out / "f1.png").read_bytes()
    (out / "f1.png").unlink()  # a killed run's missing output
    r = inproc(*cmd)  # --precision auto, the default
    assert r.code == 0 and "translated 1, skipped 2" in r.err, r.err
    assert "precision fp32 (auto: as the outputs in --out were made)" in r.err
    assert (out / "f1.png").read_bytes() == made and calls == []  # nothing to decide
    r = inproc(*cmd, "--precision", "bf16")  # asked for another: refused, naming both
    assert r.code != 0 and "(--precision: fp32, now bf16)" in r.err, r.err
    assert "Traceback" not in r.err and (out / "f1.png").read_bytes() == made
    r = inproc(*cmd, "--overwrite")  # replacing them all: auto decides afresh
    assert r.code == 0 and "precision bf16 (auto: native avx512_bf16" in r.err, r.err
    record = json.loads((out / RECORD).read_text())
    assert [s["precision"] for s in record["settings"].values()] == ["bf16"]
    (out / "f2.png").unlink()
    r = inproc(*cmd, "-s", str(tiny_style))  # and now follows bf16
    assert r.code == 0 and "precision bf16 (auto: as the outputs in --out were made)" in r.err


def test_the_record_tells_what_made_the_planned_outputs_of_this_model(tmp_path):
    from posterforge.outputs import recorded

    record = {
        "files": {"a.png": "f1", "b.png": "f1", "c.png": "f2", "sub/d.png": "f3"},
        "settings": {
            "f1": {"model": "m", "precision": "fp32"},
            "f2": {"model": "other", "precision": "bf16"},  # another style's outputs
            "f3": {"model": "m", "precision": "bf16"},
        },
    }
    (tmp_path / RECORD).write_text(json.dumps(record))
    planned = [tmp_path / n for n in ("a.png", "b.png", "c.png", "new.png")]
    assert recorded(tmp_path, planned, "precision", "m") == {"fp32"}
    assert recorded(tmp_path, [*planned, tmp_path / "sub" / "d.png"], "precision", "m") == {
        "fp32", "bf16"
    }  # mixed: nothing one precision can follow  # fmt: skip
    (tmp_path / RECORD).write_text("{not json")
    assert recorded(tmp_path, planned, "precision", "m") == set()
