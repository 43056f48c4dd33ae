"""The translate pipeline end to end, on a tiny real CycleGAN network."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge.api import translate
from posterforge.engine import Engine, pad_to_multiple
from posterforge.errors import PosterforgeError, UnknownNameError
from posterforge.outputs import RECORD
from posterforge.sizing import Size
from posterforge.weights import load_weights

from .conftest import ROOT


def _img(path: Path, w: int, h: int, mode: str = "RGB", seed: int = 0, **save) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    if mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **save)
    return path


def _expected(tiny_style, path: Path) -> np.ndarray:
    """What the network computes for one image, run directly (no engine, no batching)."""
    from posterforge_cyclegan import CycleGANResnet

    module = CycleGANResnet.build(load_weights(tiny_style))
    rgb = np.array(Image.open(path).convert("RGB"))
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    with torch.no_grad():
        padded, _ = pad_to_multiple(x, 4, 8)
        y = module(padded)[..., :h, :w]
    return y[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().numpy()


def _assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    """Batched or Winograd convolutions may round a rare pixel differently by one level."""
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())


def run(tiny_style, inputs, out, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("compile", "off")
    kw.setdefault("precision", "fp32")  # compared with torch's fp32 output: not auto's choice
    return translate(inputs, out, style=str(tiny_style), **kw)


@pytest.mark.parametrize(("w", "h"), [(37, 23), (64, 48), (5, 3), (1, 1), (130, 7)])
def test_any_size_in_same_size_out(tiny_style, tmp_path, w, h):
    src = _img(tmp_path / "in" / "a.png", w, h)
    [rec] = run(tiny_style, [src], tmp_path / "out")
    assert rec.status == "ok", rec
    out = np.array(Image.open(rec.output))
    assert out.shape == (h, w, 3)
    _assert_close(out, _expected(tiny_style, src))


def test_batches_of_mixed_sizes_give_the_same_pixels_as_one_by_one(tiny_style, tmp_path):
    sizes = [(40, 32), (33, 21), (40, 32), (40, 32), (33, 21), (17, 50), (40, 32)]
    srcs = [_img(tmp_path / "in" / f"{i}.png", w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    records = run(tiny_style, [tmp_path / "in"], tmp_path / "out", batch_size=3)
    assert sorted(r.input for r in records) == sorted(map(str, srcs))
    for r in records:
        assert r.status == "ok" and r.ms > 0
        _assert_close(np.array(Image.open(r.output)), _expected(tiny_style, Path(r.input)))


def test_input_kinds_are_converted(tiny_style, tmp_path):
    d = tmp_path / "in"
    _img(d / "gray.png", 20, 16, "L")
    _img(d / "palette.png", 20, 16, "P")
    _img(d / "rgba.png", 20, 16, "RGBA")
    _img(d / "cmyk.jpg", 20, 16, "CMYK")
    Image.fromarray((np.arange(320).reshape(16, 20) * 200).astype(np.uint16)).save(d / "deep.png")
    # EXIF orientation 6 (rotate 90): stored 20x16, shown 16x20.
    im = Image.fromarray(np.zeros((16, 20, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(d / "rotated.jpg", exif=exif)
    records = {Path(r.input).name: r for r in run(tiny_style, [d], tmp_path / "out")}
    assert {n: r.status for n, r in records.items()} == dict.fromkeys(records, "ok")
    assert len(records) == 6
    assert Image.open(records["rotated.jpg"].output).size == (16, 20)
    rgba_out = Image.open(records["rgba.png"].output)
    assert rgba_out.mode == "RGBA"  # transparency passed through for formats that hold it
    np.testing.assert_array_equal(
        np.array(rgba_out)[..., 3], np.array(Image.open(d / "rgba.png"))[..., 3]
    )
    for name in ("gray.png", "palette.png", "deep.png", "cmyk.jpg"):
        assert Image.open(records[name].output).mode == "RGB", name


def test_alpha_is_dropped_for_jpeg_or_on_request(tiny_style, tmp_path):
    src = _img(tmp_path / "in" / "rgba.png", 12, 12, "RGBA")
    [rec] = run(tiny_style, [src], tmp_path / "jpg", fmt="jpg")
    assert rec.output.endswith("rgba.jpg") and Image.open(rec.output).mode == "RGB"
    [rec] = run(tiny_style, [src], tmp_path / "drop", alpha="drop")
    assert Image.open(rec.output).mode == "RGB"


def test_bad_inputs_are_reported_and_skipped(tiny_style, tmp_path):
    d = tmp_path / "in"
    good = _img(d / "good.png", 16, 16)
    (d / "empty.png").write_bytes(b"")
    (d / "text.jpg").write_text("not an image")
    (d / "truncated.png").write_bytes(good.read_bytes()[:100])
    (d / "dangling.png").symlink_to(d / "nowhere.png")
    Image.new("1", (20000, 12000)).save(d / "bomb.png")  # 240 Mpixel, a few KB on disk
    records = {Path(r.input).name: r for r in run(tiny_style, [d], tmp_path / "out")}
    assert records["good.png"].status == "ok"
    reasons = {n: r.error for n, r in records.items() if r.status == "failed"}
    assert reasons.keys() == {"empty.png", "text.jpg", "truncated.png", "dangling.png", "bomb.png"}
    assert reasons["empty.png"] == "empty file"
    assert reasons["text.jpg"] == "not an image"
    assert reasons["dangling.png"] == "dangling link"
    assert "too large" in reasons["bomb.png"]
    assert "truncated" in reasons["truncated.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != RECORD) == [
        "good.png"
    ]


def test_skip_and_overwrite(tiny_style, tmp_path):
    src = _img(tmp_path / "in" / "a.png", 16, 16)
    out = tmp_path / "out"
    [first] = run(tiny_style, [src], out)
    Path(first.output).write_bytes(b"user's own file")
    [again] = run(tiny_style, [src], out)
    assert again.status == "skipped"
    assert Path(first.output).read_bytes() == b"user's own file"
    [forced] = run(tiny_style, [src], out, overwrite=True)
    assert forced.status == "ok" and Image.open(forced.output).size == (16, 16)


def test_tree_is_mirrored_and_format_changed(tiny_style, tmp_path):
    _img(tmp_path / "in" / "scene1" / "f001.png", 8, 8)
    _img(tmp_path / "in" / "scene2" / "deep" / "f001.PNG", 8, 8)
    records = run(tiny_style, [tmp_path / "in"], tmp_path / "out", fmt="webp")
    outs = sorted(Path(r.output).relative_to(tmp_path / "out").as_posix() for r in records)
    assert outs == ["scene1/f001.webp", "scene2/deep/f001.webp"]


def test_two_inputs_for_one_output_is_an_error_before_any_write(tiny_style, tmp_path):
    _img(tmp_path / "in" / "a.png", 8, 8)
    _img(tmp_path / "in" / "a.jpg", 8, 8)
    with pytest.raises(PosterforgeError, match="would both write"):
        run(tiny_style, [tmp_path / "in"], tmp_path / "out", fmt="png")
    assert not (tmp_path / "out").exists()


def test_resize_on_the_device(tiny_style, tmp_path):
    src = _img(tmp_path / "in" / "a.png", 40, 20)
    [rec] = run(tiny_style, [src], tmp_path / "short", size="10")
    assert Image.open(rec.output).size == (20, 10)
    [rec] = run(tiny_style, [src], tmp_path / "exact", size="24x12")
    assert Image.open(rec.output).size == (24, 12)
    with pytest.raises(PosterforgeError, match="invalid size"):
        Size.parse("0x5")


def test_sharding_covers_every_input_exactly_once(tiny_style, tmp_path):
    for i in range(12):
        _img(tmp_path / "in" / f"{i:02d}.png", 8, 8, seed=i)
    seen: list[str] = []
    for k in (1, 2, 3):
        seen += [
            r.input for r in run(tiny_style, [tmp_path / "in"], tmp_path / "out", shard=f"{k}/3")
        ]
    assert sorted(seen) == sorted(str(p) for p in (tmp_path / "in").iterdir())
    with pytest.raises(PosterforgeError, match="invalid shard"):
        run(tiny_style, [tmp_path / "in"], tmp_path / "out", shard="4/3")


def test_unknown_style_fails_before_reading_images(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'vintage'"):
        translate([tmp_path], tmp_path / "out", style="vintag", device="cpu")


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_json_lines_exit_codes_and_stderr(inproc, tiny_style, tmp_path):
    _img(tmp_path / "in" / "a.png", 8, 8)
    (tmp_path / "in" / "b.png").write_text("junk")
    r = inproc(
        "translate",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "--style",
        str(tiny_style),
        "--json",
        "--device",
        "cpu",
    )
    assert r.code == 1
    lines = [json.loads(line) for line in r.out.splitlines()]
    assert {(Path(x["input"]).name, x["status"]) for x in lines} == {
        ("a.png", "ok"),
        ("b.png", "failed"),
    }
    assert set(lines[0]) == {"input", "output", "status", "error", "ms"}
    assert f"{tmp_path / 'in' / 'b.png'}: not an image" in r.err.splitlines()
    (tmp_path / "in" / "b.png").unlink()
    r = inproc(
        "translate", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "-s", str(tiny_style), "-q"
    )
    assert (r.code, r.out.strip(), r.err) == (0, str(tmp_path / "out2" / "a.png"), "")


@pytest.mark.slow
def test_cli_reads_paths_from_stdin(inproc, tiny_style, tmp_path):
    a = _img(tmp_path / "in" / "x" / "a.png", 8, 8)
    b = _img(tmp_path / "in" / "b.png", 8, 8)
    listing = f"{a.relative_to(tmp_path)}\n\n{b}\n"
    env = {"PWD": str(tmp_path)}
    r = inproc("translate", "-", "-o", "out", "-s", str(tiny_style), "-q", stdin=listing,
               cwd=tmp_path, env=env)  # fmt: skip
    assert r.code == 0, r.err
    # a relative path keeps its folders; an absolute one is named by its file name
    assert r.out.split() == ["out/in/x/a.png", "out/b.png"]


def test_cli_usage_errors_are_one_line(inproc, tmp_path):
    r = inproc("translate", str(tmp_path), "-o", str(tmp_path / "o"), "--style", "yourname")
    assert r.code == 2
    assert r.err.startswith("posterforge: error: style 'yourname' has no weights yet")
    assert r.err.count("\n") == 1


@pytest.mark.slow
def test_killed_run_leaves_no_partial_file_and_resumes(tiny_style, tmp_path):
    n = 40
    for i in range(n):
        _img(tmp_path / "in" / f"{i:03d}.png", 96, 96, seed=i)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "posterforge",
        "translate",
        str(tmp_path / "in"),
        "-o",
        str(out),
        "-s",
        str(tiny_style),
        "-b",
        "1",
        "-q",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(out.glob("*.png"))
    assert 3 <= len(finished) < n
    for f in finished:  # every visible output is whole
        assert Image.open(f).size == (96, 96)
        Image.open(f).load()
    rerun = subprocess.run([*cmd, "--json"], capture_output=True, text=True, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr
    statuses = [json.loads(line)["status"] for line in rerun.stdout.splitlines()]
    assert statuses.count("skipped") >= len(finished) and statuses.count("ok") >= 1
    assert len(statuses) == n
    written = sorted(p.name for p in out.iterdir() if p.name != RECORD)
    assert written == [f"{i:03d}.png" for i in range(n)]


# --- the engine -----------------------------------------------------------------------------------


def test_pad_to_multiple_reflects_and_crops_back():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    y, (h, w) = pad_to_multiple(x, 4)
    assert y.shape == (2, 3, 8, 8) and (h, w) == (5, 6)
    assert torch.equal(y[..., :5, :6], x)
    assert torch.equal(y[..., 5, :6], x[..., 3, :])  # reflection, not zeros
    same, _ = pad_to_multiple(x[..., :4, :4], 4)
    assert same.shape == (2, 3, 4, 4)
    tiny, (h, w) = pad_to_multiple(x[..., :1, :2], 4, min_size=8)
    assert tiny.shape == (2, 3, 8, 8) and (h, w) == (1, 2)  # too small to reflect: replicated
    assert torch.equal(tiny[..., 7, 7], x[..., 0, 1])


def _fake_compile(calls):
    def fake_compile(module, **kwargs):
        calls["compile"] += 1

        def forward(*args):
            calls["compiled_forward"] += 1
            return module(*args)

        return forward

    return fake_compile


def test_engine_compiles_a_shape_when_the_job_holds_enough_pixels(monkeypatch, tmp_path):
    import posterforge.engine as eng

    monkeypatch.setenv("POSTERFORGE_HOME", str(tmp_path / "home"))
    calls = {"compile": 0, "compiled_forward": 0}
    monkeypatch.setattr(torch, "compile", _fake_compile(calls))
    monkeypatch.setattr(eng, "COLD_COMPILE_WORK", 10 * 8 * 8)  # ten 8x8 frames pay, cold
    monkeypatch.setattr(eng, "WARM_COMPILE_WORK", 3 * 8 * 8)
    batch = torch.randint(0, 255, (2, 8, 8, 3), dtype=torch.uint8)

    def engine(images):
        e = Engine(torch.nn.Identity(), torch.device("cpu"), compile="auto", model_id="id:1")
        e.expect(2, (8, 8), images)
        return e

    small = engine(4)
    assert torch.equal(small(batch), batch) and calls["compile"] == 0  # too few: eager
    assert small.compile_note() is None
    big = engine(10)
    assert torch.equal(big(batch), batch)  # enough: compiled on first sight (probe + call)
    assert calls == {"compile": 1, "compiled_forward": 2}
    [(shape, _secs, warm)] = big.compiled_shapes
    assert shape == (2, 3, 8, 8) and not warm and "compiled 2x3x8x8 in" in big.compile_note()
    # compiled here before: the warm threshold applies now, to this model and shape only
    assert engine(4).worth_compiling(("forward", (2, 3, 8, 8)))
    assert not engine(2).worth_compiling(("forward", (2, 3, 8, 8)))
    other = Engine(torch.nn.Identity(), torch.device("cpu"), model_id="id:2")
    other.expect(2, (8, 8), 4)
    assert not other.worth_compiling(("forward", (2, 3, 8, 8)))
    # a shape the job did not announce (the tail batch) stays eager
    assert not big.worth_compiling(("forward", (1, 3, 8, 8)))
    huge = engine(10)
    huge.compile_max_pixels = 8 * 8 - 1  # frames too large to compile automatically
    assert not huge.worth_compiling(("forward", (2, 3, 8, 8)))


def test_a_resumed_translate_decides_to_compile_as_the_first_run_did(
    monkeypatch, tiny_style, tmp_path
):
    """The decision is taken from the whole job (finished files included), never from timing:
    a killed and resumed run compiles exactly when the uninterrupted run did."""
    import posterforge.engine as eng

    monkeypatch.setenv("POSTERFORGE_HOME", str(tmp_path / "home"))
    calls = {"compile": 0, "compiled_forward": 0}
    monkeypatch.setattr(torch, "compile", _fake_compile(calls))
    monkeypatch.setattr(eng, "COLD_COMPILE_WORK", 6 * 16 * 16)
    monkeypatch.setattr(eng, "WARM_COMPILE_WORK", 6 * 16 * 16)
    srcs = [_img(tmp_path / "in" / f"{i}.png", 16, 16, seed=i) for i in range(6)]
    out = tmp_path / "out"
    first = run(tiny_style, srcs, out, compile="auto")
    assert [r.status for r in first] == ["ok"] * 6 and calls["compile"] == 1
    for r in first[:4]:
        Path(r.output).unlink()  # as if killed after two
    again = run(tiny_style, srcs, out, compile="auto")
    assert sorted(r.status for r in again) == ["ok"] * 4 + ["skipped"] * 2
    assert calls["compile"] == 2  # only 4 frames left, but the job holds 6: compiled again


def test_engine_falls_back_to_eager_when_compilation_fails(monkeypatch):
    def broken(module, **kwargs):
        def forward(x):
            raise RuntimeError("no C compiler")

        return forward

    monkeypatch.setattr(torch, "compile", broken)
    engine = Engine(torch.nn.Identity(), torch.device("cpu"), compile="on")
    batch = torch.randint(0, 255, (1, 4, 4, 3), dtype=torch.uint8)
    assert torch.equal(engine(batch), batch)
    assert torch.equal(engine(batch), batch)


def test_engine_rejects_bad_options():
    with pytest.raises(PosterforgeError, match="invalid precision"):
        Engine(torch.nn.Identity(), torch.device("cpu"), precision="fp8")
    from posterforge.engine import resolve_device

    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(PosterforgeError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(PosterforgeError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_bf16_precision_runs_on_cpu(tiny_style, tmp_path):
    src = _img(tmp_path / "in" / "a.png", 16, 16)
    [rec] = run(tiny_style, [src], tmp_path / "out", precision="bf16")
    got = np.array(Image.open(rec.output)).astype(int)
    assert np.abs(got - _expected(tiny_style, src).astype(int)).max() <= 8


def test_cpu_fp32_runs_the_winograd_variant_and_gpu_paths_do_not(tiny_style):
    from posterforge.translation import load_engine
    from posterforge_cyclegan.winograd import WinogradConv3x3

    def winograd_layers(engine):
        return sum(isinstance(m, WinogradConv3x3) for m in engine.module.modules())

    assert winograd_layers(load_engine(str(tiny_style), device="cpu")) == 2  # 1 block, 2 convs
    assert winograd_layers(load_engine(str(tiny_style), device="cpu", precision="bf16")) == 0


def test_an_output_folder_inside_the_input_is_not_read_back(tiny_style, tmp_path):
    _img(tmp_path / "frames" / "a.png", 8, 8)
    out = tmp_path / "frames" / "styled"
    [first] = run(tiny_style, [tmp_path / "frames"], out)
    assert first.status == "ok"
    again = run(tiny_style, [tmp_path / "frames"], out)
    assert [(Path(r.input).name, r.status) for r in again] == [("a.png", "skipped")]


def test_cli_says_when_there_is_nothing_to_do(inproc, tiny_style, tmp_path):
    (tmp_path / "empty").mkdir()
    r = inproc(
        "translate", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "-s", str(tiny_style)
    )
    assert r.code == 2 and "no images found" in r.err


def test_another_style_into_the_same_out_is_refused_not_skipped(tiny_style, tmp_path):
    """Outputs are skipped only when the same settings made them."""
    from posterforge.api import translate
    from posterforge.errors import PosterforgeError

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(src / "a.png")
    out = tmp_path / "out"
    kw = dict(style=str(tiny_style), device="cpu", compile="off")
    assert [r.status for r in translate([src], out, **kw)] == ["ok"]
    assert [r.status for r in translate([src], out, **kw)] == ["skipped"]
    with pytest.raises(PosterforgeError, match=r"made with other settings \(.*size"):
        translate([src], out, size="8", **kw)
    with pytest.raises(PosterforgeError, match="made with other settings"):
        translate([src], out, style="vintage", device="cpu", compile="off")
    assert [r.status for r in translate([src], out, size="8", overwrite=True, **kw)] == ["ok"]
    assert Image.open(out / "a.png").size == (8, 8)
    assert [r.status for r in translate([src], out, size="8", **kw)] == ["skipped"]


def test_warmup_compiles_ahead_and_later_runs_count_as_warm(monkeypatch, tiny_style, tmp_path):
    from typer.testing import CliRunner

    import posterforge.engine as eng
    from posterforge.cli import app

    monkeypatch.setenv("POSTERFORGE_HOME", str(tmp_path / "home"))
    calls = {"compile": 0, "compiled_forward": 0}
    monkeypatch.setattr(torch, "compile", _fake_compile(calls))
    args = ["warmup", "--style", str(tiny_style), "--size", "16x12", "--device", "cpu"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "(batch shape 1x3x12x16)" in r.output and "now in the cache" in r.output
    assert calls["compile"] == 1
    # a translate job of that size now compiles from the warm threshold on
    from posterforge.translation import load_engine

    engine = load_engine(str(tiny_style), device="cpu")
    monkeypatch.setattr(eng, "WARM_COMPILE_WORK", 5 * 16 * 12)
    monkeypatch.setattr(eng, "COLD_COMPILE_WORK", 10**12)
    engine.expect(1, (12, 16), 5)
    assert engine.worth_compiling(("forward", (1, 3, 12, 16)))
    r = CliRunner().invoke(app, [*args, "--batch-size", "2"])
    assert "now in the cache" in r.output  # another batch size is another compile
    from tests.conftest import run_inprocess

    bad = run_inprocess("warmup", "--style", str(tiny_style), "--size", "16")
    assert bad.code == 2 and "exact size as WxH" in bad.err


def test_warming_up_a_size_auto_never_compiles_says_so_first(monkeypatch, tiny_style):
    """Frames over 512x512 stay eager under --compile auto: a warm-up of them (minutes on a CPU)
    helps only --compile on, and the note comes before the compiling starts."""
    from posterforge import warmup as warm
    from tests.conftest import run_inprocess

    events = []

    def fake(style, size, **kw):
        events.append("compile")
        return warm.Warmed((1, 3, 720, 1280), 1.0, False)

    monkeypatch.setattr(warm, "warmup_style", fake)
    real_note = warm.eager_note
    monkeypatch.setattr(warm, "eager_note", lambda size: events.append("note") or real_note(size))
    big = run_inprocess("warmup", "--style", str(tiny_style), "--size", "1280x720")
    assert big.code == 0 and events == ["note", "compile"]
    assert "posterforge: note: --compile auto leaves frames over 512x512 eager" in big.err
    small = run_inprocess("warmup", "--style", str(tiny_style), "--size", "512x512")
    assert small.code == 0 and "note" not in small.err


@pytest.mark.slow
@pytest.mark.parametrize("nodes", [1, 2], ids=["one-node", "two-nodes"])
def test_torchrun_translate_shards_the_inputs_and_writes_what_one_process_writes(
    tiny_style, tmp_path, cli, inproc, nodes
):
    """Two gloo processes on the CPU, on one node or as two nodes joined by torchrun's c10d
    rendezvous: each its share, one summary, and together the bytes one process writes (with
    the one thread per process that torchrun gives each)."""
    from tests.conftest import run_torchrun

    for i in range(9):
        _img(tmp_path / "in" / f"{i}.png", 24 + i, 16, seed=i)
    common = ["-s", str(tiny_style), "--device", "cpu", "--json"]
    one = cli("translate", str(tmp_path / "in"), "-o", str(tmp_path / "one"), *common,
              env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert one.code == 0, one.err
    two = run_torchrun("translate", str(tmp_path / "in"), "-o", str(tmp_path / "two"), *common,
                       procs=2 // nodes, nodes=nodes)  # fmt: skip
    assert two.code == 0, two.err[-2000:]

    def files(folder):
        return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}

    assert files(tmp_path / "two") == files(tmp_path / "one") and len(files(tmp_path / "one")) == 9
    records = [json.loads(line) for line in two.out.splitlines()]
    assert sorted(Path(r["output"]).name for r in records) == sorted(files(tmp_path / "one"))
    summaries = [line for line in two.err.splitlines() if line.startswith("translated ")]
    assert len(summaries) == 1 and summaries[0].startswith("translated 9, skipped 0, failed 0")
    both = inproc("translate", str(tmp_path / "in"), "-o", str(tmp_path / "x"), *common,
                  "--shard", "1/2", env={"WORLD_SIZE": "2", "RANK": "0"})  # fmt: skip
    assert both.code == 2 and "--shard and torchrun" in both.err


def test_bf16_on_a_cpu_without_native_bf16_is_called_slow():
    from posterforge.engine import slow_bf16_note

    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    note = slow_bf16_note(torch.device("cpu"), "bf16")
    assert (note is None) == native
    if note is not None:
        assert "no native bf16" in note and "fp32 is the faster choice" in note
    assert slow_bf16_note(torch.device("cpu"), "fp32") is None
    assert slow_bf16_note(torch.device("cuda"), "bf16") is None
