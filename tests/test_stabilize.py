"""``translate --stabilize`` (issue 26): instance-norm statistics shared across a shot's frames.

The layer (batch 4 gives batch 1's frames, strength 0 is plain instance norm, its state read and
restored), the CycleGAN family's capability (its Winograd/in-place CPU variant included), the
refusal of a network without it, and videos: less frame-to-frame change on a noisy still shot,
the statistics restarted at a cut, and a resumed run writing the bytes of a straight one. Clips
are made here with PyAV, 64x48."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT

av = pytest.importorskip("av")
torch = pytest.importorskip("torch")

from posterforge import stabilize as stab  # noqa: E402
from posterforge.errors import PosterforgeError  # noqa: E402

from .test_video import finished_segments, leftovers, run  # noqa: E402


def tiny_net(ngf: int = 4, blocks: int = 1):
    from posterforge_cyclegan.config import ResnetConfig
    from posterforge_cyclegan.network import ResnetGenerator, UnitRange

    torch.manual_seed(0)
    return UnitRange(ResnetGenerator(ResnetConfig(ngf=ngf, n_blocks=blocks, affine=True)), 4).eval()


def noisy_frames(n: int = 6, h: int = 48, w: int = 64, sigma: float = 8.0) -> torch.Tensor:
    """A still picture with sensor noise: ``(n, 3, h, w)`` in [0, 1]."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3, y * 5, (x + y) * 2]).astype(np.float32)
    noisy = np.clip(base + rng.normal(0, sigma, (n, *base.shape)), 0, 255) / 255
    return torch.from_numpy(noisy.astype(np.float32))


# --- the layer and the capability -----------------------------------------------------------------


@pytest.mark.parametrize("variant", ["plain", "cpu"])
def test_batch_4_gives_batch_1s_frames(variant):
    """Within a batch, each frame sees the state as if the frames ran one at a time; also in the
    family's optimize_for variant (Winograd convs, in-place norms)."""
    net = tiny_net(ngf=4, blocks=1).stabilized(0.7)
    if variant == "cpu":
        net = net.optimize_for(torch.device("cpu"), None)
        assert stab.shared_norms(net), "the CPU variant dropped the shared norms"
    x = noisy_frames(8, h=24, w=32)
    with torch.no_grad():
        together = torch.cat([net(x[:4]), net(x[4:])])
        stab.reset(net)
        alone = torch.cat([net(x[i : i + 1]) for i in range(8)])
    assert torch.allclose(together, alone, atol=2e-5), (together - alone).abs().max()


def test_strength_0_is_plain_instance_norm_and_state_carries_over():
    net = tiny_net()
    x = noisy_frames(4)
    with torch.no_grad():
        plain = net(x)
        assert torch.allclose(net.stabilized(0.0)(x), plain, atol=1e-5)
        shared = net.stabilized(0.8)
        first = shared(x[:2])
        assert torch.allclose(first[0], plain[0], atol=1e-5)  # a shot's first frame: its own
        assert not torch.allclose(first[1], plain[1], atol=1e-4)  # later ones: the average
        state = stab.norm_state(shared)
        assert len(state) == 2 * len(stab.shared_norms(shared))
        after = shared(x[2:])
        stab.reset(shared)
        stab.set_norm_state(shared, state)
        assert torch.equal(shared(x[2:]), after)  # restored exactly
        with pytest.raises(ValueError):
            stab.set_norm_state(shared, {"0.mean": torch.zeros(3), "0.var": torch.ones(3)})


def test_a_network_without_the_capability_is_refused_in_one_line():
    with pytest.raises(PosterforgeError) as e:
        stab.stabilized(torch.nn.Conv2d(3, 3, 1), 0.5, "toy")
    assert "toy" in str(e.value) and stab.CAPABILITY in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(PosterforgeError, match="0 <= strength < 1"):
        stab.check_strength(1.0)


def test_stabilised_statistics_change_less_from_frame_to_frame():
    """What the layer is for: on a still shot with noise, the scale each norm applies moves
    less from frame to frame than instance norm's own (per frame) does."""
    x = noisy_frames(12, sigma=20.0)
    norm = torch.nn.InstanceNorm2d(3)
    shared = stab.SharedNorm(norm, 0.8)
    scales = []
    for i in range(12):
        var = x[i : i + 1].var(dim=(2, 3), unbiased=False)
        own = torch.rsqrt(var + norm.eps)
        scale, _ = shared._scale_shift(x[i : i + 1])
        scales.append((own.flatten(), scale.flatten()))
    own_jumps = sum((a[0] - b[0]).abs().sum() for a, b in itertools.pairwise(scales))
    shared_jumps = sum((a[1] - b[1]).abs().sum() for a, b in itertools.pairwise(scales))
    assert shared_jumps < 0.5 * own_jumps


# --- videos ---------------------------------------------------------------------------------------


def still_clip(path: Path, frames: int = 24, cut_at: int | None = None, fps: int = 12) -> Path:
    """A still shot with sensor noise (lossless x264 keeps it); with ``cut_at``, another still
    picture from that frame on."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:48, 0:64]
    shots = [
        np.stack([x * 3, y * 5, (x + y) * 2], -1).astype(np.float32),
        np.stack([255 - y * 5, x * 2 + 60, 200 - x * 3], -1).astype(np.float32),
    ]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = Fraction(1, fps)
        v.options = {"crf": "0"}
        for i in range(frames):
            base = shots[1 if cut_at is not None and i >= cut_at else 0]
            img = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    return path


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(float)


def temporal_change(frames: np.ndarray) -> float:
    """Mean absolute difference of consecutive frames, grey levels."""
    return float(np.abs(np.diff(frames, axis=0)).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.slow
def test_a_noisy_still_shot_changes_less_and_stays_close(tiny_style, tmp_path, capsys):
    src = still_clip(tmp_path / "still.mp4")
    outs = {}
    for name, strength in (("plain", None), ("stable", 0.5)):
        [rec] = run(tiny_style, [src], tmp_path / name / "still.mp4", crf=0, stabilize=strength)
        assert rec.status == "ok", rec.error
        outs[name] = decoded(tmp_path / name / "still.mp4")
    plain, stable = temporal_change(outs["plain"]), temporal_change(outs["stable"])
    close = psnr(outs["stable"], outs["plain"])
    with capsys.disabled():  # the measure, for the record (docs/translate.md)
        print(f"\nstill shot: input {temporal_change(decoded(src)):.3f}, plain {plain:.3f}, "
              f"stabilised {stable:.3f} grey levels/frame; PSNR against plain {close:.1f} dB")
    assert stable < plain
    assert close > 30


@pytest.mark.slow  # a video through the model, twice or more
def test_the_statistics_restart_at_a_cut(tiny_style, tmp_path, monkeypatch):
    """The first frame of the second shot is translated as plain instance norm translates it
    (its own statistics), the one after it is not (the shot's running average)."""
    from posterforge.video.segments import SegmentWriter

    src = still_clip(tmp_path / "cut.mp4", frames=14, cut_at=8)
    written: dict[str, list[np.ndarray]] = {}
    original = SegmentWriter.write

    def keep(self, rgb, *args):
        written.setdefault(self.parts.dir.parent.name, []).append(rgb.astype(float))
        return original(self, rgb, *args)

    monkeypatch.setattr(SegmentWriter, "write", keep)
    for name, strength in (("plain", None), ("stable", 0.8)):
        [rec] = run(tiny_style, [src], tmp_path / name / "cut.mp4", stabilize=strength)
        assert rec.status == "ok", rec.error
    plain, stable = written["plain"], written["stable"]
    assert np.abs(stable[0] - plain[0]).max() <= 1
    assert np.abs(stable[8] - plain[8]).max() <= 1  # reset at the cut
    assert np.abs(stable[9] - plain[9]).max() > 1


@pytest.mark.slow  # a video through the model, twice or more
def test_batch_4_writes_batch_1s_frames(tiny_style, tmp_path, monkeypatch):
    from posterforge.video.segments import SegmentWriter

    src = still_clip(tmp_path / "still.mp4", frames=10)
    written: dict[str, list[np.ndarray]] = {}
    original = SegmentWriter.write

    def keep(self, rgb, *args):
        written.setdefault(self.parts.dir.parent.name, []).append(rgb.astype(int))
        return original(self, rgb, *args)

    monkeypatch.setattr(SegmentWriter, "write", keep)
    for batch in (1, 4):
        [rec] = run(tiny_style, [src], tmp_path / f"b{batch}" / "still.mp4", batch_size=batch,
                    stabilize=0.8)  # fmt: skip
        assert rec.status == "ok", rec.error
    one, four = np.stack(written["b1"]), np.stack(written["b4"])
    assert one.shape == four.shape == (10, 48, 64, 3)
    assert np.abs(one - four).max() <= 1 and (one != four).mean() < 0.01  # convs' rounding


# seen on a 2-core Xeon with AVX-512 and AMX (session 9): the resumed file differed from the
# straight run's at byte 43 (passed on the AVX2 machine before); the same class as the kill -9
# flake of issue 23, which stays open for it
_CPUINFO = Path("/proc/cpuinfo")
_AVX512 = _CPUINFO.exists() and "avx512f" in _CPUINFO.read_text()


@pytest.mark.slow  # a video through the model, twice or more
@pytest.mark.xfail(_AVX512, reason="resume not byte-exact on AVX-512 CPUs (issue 23)", strict=False)
def test_an_interrupted_stabilised_video_resumes_to_the_same_bytes(
    tiny_style, tmp_path, monkeypatch, caplog
):
    """Stopped after 2 of 5 segments (what a kill leaves: the finished segments, their states
    and the manifest), then run again: the bytes of a straight run."""
    from posterforge.video.segments import Parts

    monkeypatch.setenv("POSTERFORGE_SEGMENT_SECONDS", "0.5")  # 6 frames a segment
    src = still_clip(tmp_path / "still.mp4", frames=30)
    whole = tmp_path / "whole" / "still.mp4"
    [rec] = run(tiny_style, [src], whole, batch_size=4, stabilize=0.5)
    assert rec.status == "ok", rec.error
    commit = Parts.commit

    def stop_after_two(self, *args):
        commit(self, *args)
        if len(self.segments) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Parts, "commit", stop_after_two)
    dest = tmp_path / "resumed" / "still.mp4"
    with pytest.raises(KeyboardInterrupt):
        run(tiny_style, [src], dest, batch_size=4, stabilize=0.5)
    parts = dest.with_name(".still.mp4.parts")
    segments = finished_segments(parts)
    assert len(segments) == 2 and all((parts / s["state"]).is_file() for s in segments)
    monkeypatch.setattr(Parts, "commit", commit)
    [rec] = run(tiny_style, [src], dest, batch_size=4, stabilize=0.5)
    assert rec.status == "ok", rec.error
    assert "resuming after 12 frames" in caplog.text
    assert dest.read_bytes() == whole.read_bytes()
    assert leftovers(tmp_path / "resumed") == []


@pytest.mark.slow  # a video through the model, twice or more
def test_a_lost_state_starts_over(tiny_style, tmp_path, monkeypatch, caplog):
    from posterforge.video.segments import Parts

    monkeypatch.setenv("POSTERFORGE_SEGMENT_SECONDS", "0.5")
    src = still_clip(tmp_path / "still.mp4", frames=18)
    commit = Parts.commit

    def stop_after_one(self, *args):
        commit(self, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(Parts, "commit", stop_after_one)
    dest = tmp_path / "out" / "still.mp4"
    with pytest.raises(KeyboardInterrupt):
        run(tiny_style, [src], dest, stabilize=0.5)
    monkeypatch.setattr(Parts, "commit", commit)
    parts = dest.with_name(".still.mp4.parts")
    (parts / finished_segments(parts)[0]["state"]).write_bytes(b"not a state")
    [rec] = run(tiny_style, [src], dest, stabilize=0.5)
    assert rec.status == "ok", rec.error
    assert "stabilisation state is unreadable" in caplog.text
    straight = tmp_path / "straight" / "still.mp4"
    run(tiny_style, [src], straight, stabilize=0.5)
    assert dest.read_bytes() == straight.read_bytes()


def test_stabilize_on_an_image_and_a_bad_strength_are_one_line(inproc, tiny_style, tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    r = inproc("translate", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-s",
               str(tiny_style), "--device", "cpu", "--stabilize")  # fmt: skip
    assert r.code == 2 and "--stabilize works on videos" in r.err
    assert len(r.err.strip().splitlines()) == 1
    r = inproc("translate", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-s",
               str(tiny_style), "--stabilize-strength", "1.5")  # fmt: skip
    assert r.code == 2 and "invalid --stabilize 1.5" in r.err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_kill_9_of_a_stabilised_video_resumes_to_the_same_bytes(tiny_style, tmp_path):
    src = still_clip(tmp_path / "still.mp4", frames=48, cut_at=20)
    env = {**os.environ, "POSTERFORGE_SEGMENT_SECONDS": "0.5"}

    def args(dest: Path) -> list[str]:
        return [sys.executable, "-m", "posterforge", "translate", str(src), "--out", str(dest),
                "--style", str(tiny_style), "--device", "cpu", "--precision", "fp32", "-q",
                "--batch-size", "4", "--stabilize"]  # fmt: skip

    whole = tmp_path / "whole" / "still.mp4"
    subprocess.run(args(whole), env=env, cwd=ROOT, check=True, capture_output=True)
    dest = tmp_path / "killed" / "still.mp4"
    parts = dest.with_name(".still.mp4.parts")
    for after in (1, 4):
        proc = subprocess.Popen(
            args(dest), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while len(finished_segments(parts)) < after:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(args(dest), env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming after" in done.stderr
    assert dest.read_bytes() == whole.read_bytes()
