"""The translate pipeline end to end, on a tiny real CycleGAN network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge.engine import Engine, pad_to_multiple
from posterforge.errors import PosterforgeError, UnknownNameError
from posterforge.outputs import RECORD
from posterforge.translation import Size, translate
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


def test_cli_json_lines_exit_codes_and_stderr(cli, tiny_style, tmp_path):
    _img(tmp_path / "in" / "a.png", 8, 8)
    (tmp_path / "in" / "b.png").write_text("junk")
    r = cli(
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
    r = cli(
        "translate", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "-s", str(tiny_style), "-q"
    )
    assert (r.code, r.out.strip(), r.err) == (0, str(tmp_path / "out2" / "a.png"), "")


def test_cli_reads_paths_from_stdin(cli, tiny_style, tmp_path):
    a = _img(tmp_path / "in" / "x" / "a.png", 8, 8)
    b = _img(tmp_path / "in" / "b.png", 8, 8)
    listing = f"{a.relative_to(tmp_path)}\n\n{b}\n"
    env = {"PWD": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "posterforge",
            "translate",
            "-",
            "-o",
            "out",
            "-s",
            str(tiny_style),
            "-q",
        ],
        input=listing,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    # a relative path keeps its folders; an absolute one is named by its file name
    assert proc.stdout.split() == ["out/in/x/a.png", "out/b.png"]


def test_cli_usage_errors_are_one_line(cli, tmp_path):
    r = cli("translate", str(tmp_path), "-o", str(tmp_path / "o"), "--style", "yourname")
    assert r.code == 2
    assert r.err.startswith("posterforge: error: style 'yourname' has no weights yet")
    assert r.err.count("\n") == 1


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


def test_engine_compiles_a_shape_after_its_eager_budget(monkeypatch):
    calls = {"compile": 0, "compiled_forward": 0}

    def fake_compile(module, **kwargs):
        calls["compile"] += 1

        def forward(x):
            calls["compiled_forward"] += 1
            return module(x)

        return forward

    monkeypatch.setattr(torch, "compile", fake_compile)
    engine = Engine(torch.nn.Identity(), torch.device("cpu"), compile="auto", compile_after_s=1e-9)
    batch = torch.randint(0, 255, (2, 8, 8, 3), dtype=torch.uint8)
    assert torch.equal(engine(batch), batch)  # first call: eager, spends the (tiny) budget
    assert calls == {"compile": 0, "compiled_forward": 0}
    assert torch.equal(engine(batch), batch)  # budget spent: compiled (probe + real call)
    assert calls == {"compile": 1, "compiled_forward": 2}


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


def test_engine_compiles_only_when_the_rest_of_the_job_pays_for_it(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(1) or module)
    engine = Engine(torch.nn.Identity(), torch.device("cpu"), compile_after_s=1e-9)
    batch = torch.zeros((1, 8, 8, 3), dtype=torch.uint8)
    engine.remaining = 3  # three more tiny images: nowhere near compile_payoff_s of work
    engine(batch)
    engine(batch)
    assert compiled == []
    engine.compile_payoff_s = 0.0  # any remaining work pays now
    engine(batch)
    assert compiled == [1]
    big = Engine(torch.nn.Identity(), torch.device("cpu"), compile_after_s=1e-9)
    big.compile_max_pixels = 8 * 8 - 1  # frames too large to compile automatically
    big(batch)
    big(batch)
    assert compiled == [1]


def test_an_output_folder_inside_the_input_is_not_read_back(tiny_style, tmp_path):
    _img(tmp_path / "frames" / "a.png", 8, 8)
    out = tmp_path / "frames" / "styled"
    [first] = run(tiny_style, [tmp_path / "frames"], out)
    assert first.status == "ok"
    again = run(tiny_style, [tmp_path / "frames"], out)
    assert [(Path(r.input).name, r.status) for r in again] == [("a.png", "skipped")]


def test_cli_says_when_there_is_nothing_to_do(cli, tiny_style, tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli("translate", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "-s", str(tiny_style))
    assert r.code == 2 and "no images found" in r.err


def test_another_style_into_the_same_out_is_refused_not_skipped(tiny_style, tmp_path):
    """Outputs are skipped only when the same settings made them."""
    from posterforge.errors import PosterforgeError
    from posterforge.translation import translate

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
