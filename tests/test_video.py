"""Translating video files: frames through the same engine as images, time stamps, audio,
rotation and colour range kept, segments that survive kill -9, damaged and bad inputs.

Every clip is made here with PyAV, tiny (64x48, a few dozen frames), and translated by the tiny
CycleGAN of ``tiny_style``."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import posterforge
from posterforge.video.containers import is_video
from posterforge.video.io import to_rgb

from .conftest import ROOT

av = pytest.importorskip("av")

W, H = 64, 48
# Codec tolerance at the default CRF 18, measured: the decoded output frames differ from the
# input's decoded frames translated as images (then taken to 4:2:0) by 4.5 grey levels on average,
# 17 at the 99th percentile. That is the worst case for a codec: the random tiny network turns the
# clip into pixel-sized noise. At CRF 0 (lossless) they are equal bit for bit.
MEAN_TOLERANCE = 6.0
P99_TOLERANCE = 24


def make_clip(
    path: Path,
    *,
    frames: int = 24,
    fps: int = 24,
    size: tuple[int, int] = (W, H),
    audio: bool = False,
    vfr: bool = False,
    rotate: int | None = None,
    full_range: bool = False,
) -> Path:
    """A short clip: a moving gradient with some texture, H.264; optionally AAC audio, variable
    frame rate (time stamps 30, 50, 80 ms apart), a display matrix, full-range colour."""
    w, h = size
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        tb = Fraction(1, 1000) if vfr else Fraction(1, fps)
        video.codec_context.time_base = tb
        if full_range:
            video.codec_context.color_range = 2
        if rotate is not None:
            video.set_display_rotation(rotate)
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=48000)
            sound.layout = "stereo"
        y, x = np.mgrid[0:h, 0:w]
        texture = rng.integers(0, 24, (h, w, 3))
        pts = 0
        for i in range(frames):
            img = np.stack(
                [(x * 3 + i * 7) % 256, (y * 5 + i * 3) % 256, (x + y + i * 11) % 256], axis=-1
            )
            img = np.clip(img * 0.8 + texture, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if full_range:
                frame = frame.reformat(format="yuv420p", dst_color_range=2)
                frame.color_range = 2
            frame.pts = pts
            pts += (30, 50, 80)[i % 3] if vfr else 1
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples, done = int(frames / fps * 48000), 0
            t = np.arange(1024) / 48000
            while done < samples:
                tone = np.sin(2 * np.pi * 440 * (t + done / 48000)).astype(np.float32) * 0.2
                af = av.AudioFrame.from_ndarray(
                    np.stack([tone, tone]), format="fltp", layout="stereo"
                )
                af.sample_rate, af.pts = 48000, done
                done += 1024
                for packet in sound.encode(af):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def frames_of(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    """Decoded RGB frames, their time stamps, and what the stream says of itself."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rgb, pts, first = [], [], None
        for frame in c.decode(v):
            first = first or frame
            rgb.append(to_rgb(frame))
            pts.append(frame.pts)
        about = {
            "size": (v.width, v.height),
            "time_base": v.time_base,
            "rotation": first.rotation if first else None,
            "color_range": int(first.color_range) if first else None,
            "keyframes": None,
        }
    with av.open(str(path)) as c:
        about["keyframes"] = sum(p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size)
    return rgb, pts, about


def audio_packets(path: Path) -> list[tuple[int, int, bytes]]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts, p.dts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def leftovers(folder: Path) -> list[str]:
    """Work folders, temp files and locks: what a finished run must not leave."""
    return sorted(
        p.name
        for p in folder.rglob(".*")
        if p.name.endswith((".parts", ".tmp", ".lock")) or ".parts" in p.parts[-2:-1]
    )


def run(tiny_style: Path, inputs: list, out: Path, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("compile", "off")
    kw.setdefault("precision", "fp32")  # compared with torch's fp32 output: not auto's choice
    return posterforge.translate(inputs, out, style=str(tiny_style), **kw)


# --- what is kept ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_writes_one_file_keeping_frames_times_size_and_audio(inproc, tiny_style, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", frames=30, audio=True)
    dest = tmp_path / "clip-vintage.mp4"
    common = ["--style", str(tiny_style), "--device", "cpu", "--compile", "off"]
    r = inproc("translate", str(src), "--out", str(dest), "--json", *common)
    assert r.code == 0, r.err
    [line] = r.out.splitlines()  # stdout: one record, nothing else
    rec = json.loads(line)
    assert rec["status"] == "ok" and rec["output"] == str(dest) and rec["frames"] == 30
    assert {"input", "output", "status", "frames", "seconds", "error"} <= set(rec)
    _, pts_in, about_in = frames_of(src)
    got, pts_out, about_out = frames_of(dest)
    assert len(got) == 30 and pts_out == pts_in
    assert about_out["size"] == (W, H) and about_out["time_base"] == about_in["time_base"]
    assert audio_packets(dest) == audio_packets(src)  # copied, not re-encoded
    assert leftovers(tmp_path) == []
    # the same settings again: skipped; other settings: refused before work, naming --overwrite
    [again] = run(tiny_style, [src], dest)
    assert again.status == "skipped" and again.output == str(dest)
    refused = r"--crf: 18, now 30.*--overwrite"  # the option as the user typed it (issue 22)
    with pytest.raises(posterforge.errors.PosterforgeError, match=refused):
        run(tiny_style, [src], dest, crf=30)


def test_pixels_match_translating_the_decoded_frames_as_images(tiny_style, tmp_path):
    """The input's decoded frames translated as PNG images, then taken to 4:2:0 (the output's
    chroma resolution): losslessly encoded (CRF 0) the video's frames equal them exactly; at the
    default CRF 18 they differ by the codec's loss alone."""
    from PIL import Image

    src = make_clip(tmp_path / "clip.mp4", frames=8)
    (tmp_path / "frames").mkdir()
    for i, rgb in enumerate(frames_of(src)[0]):
        Image.fromarray(rgb).save(tmp_path / "frames" / f"{i:03d}.png")
    run(tiny_style, [tmp_path / "frames"], tmp_path / "images")
    expected = np.stack(
        [via_420(np.asarray(Image.open(tmp_path / "images" / f"{i:03d}.png"))) for i in range(8)]
    ).astype(int)
    [lossless] = run(tiny_style, [src], tmp_path / "lossless", crf=0)
    [default] = run(tiny_style, [src], tmp_path / "default")
    assert lossless.status == default.status == "ok" and default.frames == 8
    exact = np.abs(np.stack(frames_of(Path(lossless.output))[0]).astype(int) - expected)
    assert exact.max() <= 1, exact.max()  # measured: 0, bit for bit
    lossy = np.abs(np.stack(frames_of(Path(default.output))[0]).astype(int) - expected)
    assert lossy.mean() < MEAN_TOLERANCE, lossy.mean()
    assert np.percentile(lossy, 99) <= P99_TOLERANCE, np.percentile(lossy, 99)


def via_420(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` through YUV 4:2:0 and back (BT.601, limited range: what an untagged clip uses)."""
    return to_rgb(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p"))


def test_variable_frame_rate_stays_variable(tiny_style, tmp_path):
    src = make_clip(tmp_path / "vfr.mp4", frames=18, vfr=True)
    [rec] = run(tiny_style, [src], tmp_path / "out")
    _, pts_in, about = frames_of(src)
    _, pts_out, about_out = frames_of(Path(rec.output))
    steps = {b - a for a, b in itertools.pairwise(pts_out)}
    assert pts_out == pts_in and about_out["time_base"] == about["time_base"] and len(steps) == 3


def test_rotation_and_full_colour_range_are_kept(tiny_style, tmp_path):
    src = make_clip(tmp_path / "phone.mov", frames=8, rotate=90, full_range=True)
    _, _, about_in = frames_of(src)
    assert about_in["rotation"] == 90 and about_in["color_range"] == 2
    [rec] = run(tiny_style, [src], tmp_path / "out")
    assert rec.status == "ok" and rec.output.endswith("phone.mov")
    _, _, about = frames_of(Path(rec.output))
    assert about["rotation"] == 90 and about["color_range"] == 2 and about["size"] == (W, H)
    # --size counts in the upright picture (48 wide, 64 high): 24x32, stored turned as 32x24
    [small] = run(tiny_style, [src], tmp_path / "small", size="24x32")
    _, _, about = frames_of(Path(small.output))
    assert about["size"] == (32, 24) and about["rotation"] == 90


def test_a_folder_mirrors_videos_and_images_and_a_named_video_is_probed(tiny_style, tmp_path):
    from PIL import Image

    (tmp_path / "in").mkdir()
    Image.new("RGB", (20, 10), "red").save(tmp_path / "in" / "a.png")
    make_clip(tmp_path / "in" / "scene" / "shot.mkv", frames=6)
    make_clip(tmp_path / "odd.mp4", frames=6).rename(
        tmp_path / "odd.bin"
    )  # a name that says nothing
    assert is_video(tmp_path / "odd.bin") and not is_video(tmp_path / "in" / "a.png")
    records = run(tiny_style, [tmp_path / "in", tmp_path / "odd.bin"], tmp_path / "out")
    assert {r.status for r in records} == {"ok"}, records
    out = tmp_path / "out"
    assert (out / "a.png").is_file() and (out / "scene" / "shot.mkv").is_file()
    assert (out / "odd.mkv").is_file()  # a container we do not name: Matroska
    assert len(frames_of(out / "scene" / "shot.mkv")[0]) == 6
    assert leftovers(out) == []


# --- resuming -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_mid_video_then_a_rerun_resumes_to_a_whole_file(inproc, tiny_style, tmp_path):
    src = make_clip(tmp_path / "film.mp4", frames=72, audio=True)
    dest = tmp_path / "out" / "film.mp4"
    parts = dest.with_name(".film.mp4.parts")
    args = [sys.executable, "-m", "posterforge", "translate", str(src), "--out", str(dest)]
    args += ["--style", str(tiny_style), "--device", "cpu", "--compile", "off", "-q"]
    env = {**os.environ, "POSTERFORGE_SEGMENT_SECONDS": "0.5"}
    proc = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not finished_segments(parts):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not dest.exists()
    assert 0 < sum(s["frames"] for s in finished_segments(parts)) < 72

    r = inproc("translate", str(src), "--out", str(dest), *args[7:-1], env=env)
    assert r.code == 0, r.err
    assert "resuming after" in r.err
    _, pts_in, _ = frames_of(src)
    _, pts_out, about = frames_of(dest)
    assert pts_out == pts_in  # every frame, once, at its time
    assert about["keyframes"] >= 6  # each segment starts on a keyframe: 0.5 s = 12 frames
    assert audio_packets(dest) == audio_packets(src)
    assert leftovers(tmp_path / "out") == []


def finished_segments(parts: Path) -> list[dict]:
    try:
        return json.loads((parts / "manifest.json").read_text())["segments"]
    except (OSError, ValueError):
        return []


def test_unfinished_work_made_otherwise_is_refused_unless_overwrite(tiny_style, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", frames=6)
    parts = tmp_path / "out" / ".clip.mp4.parts"
    parts.mkdir(parents=True)
    (parts / "seg-000000.mp4").write_bytes(b"x")
    manifest = {
        "version": 1,
        "fingerprint": "0" * 16,
        "settings": {"crf": 30},
        "input": {},
        "segments": [{"file": "seg-000000.mp4", "frames": 3, "first_pts": 0, "last_pts": 2}],
    }
    (parts / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(posterforge.errors.PosterforgeError, match=r"crf 30, now 18.*--overwrite"):
        run(tiny_style, [src], tmp_path / "out")
    [rec] = run(tiny_style, [src], tmp_path / "out", overwrite=True)
    assert rec.status == "ok" and len(frames_of(Path(rec.output))[0]) == 6
    assert leftovers(tmp_path / "out") == []


# --- bad inputs and options -----------------------------------------------------------------------


def test_a_truncated_video_gives_what_decodes_with_a_note(tiny_style, tmp_path):
    whole = make_clip(tmp_path / "whole.mkv", frames=24)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    [rec] = run(tiny_style, [cut], tmp_path / "out")
    assert rec.status == "ok" and rec.note and "input damaged" in rec.note, rec
    assert "ends at" in rec.note and "1.00 s" in rec.note
    got, _, _ = frames_of(Path(rec.output))  # a whole, playable file of the frames that decode
    assert 0 < len(got) == rec.frames < 24


@pytest.mark.slow
def test_bad_inputs_are_one_line_each_and_leave_nothing(inproc, tiny_style, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.mp4").write_text("not a video\n")
    with av.open(str(bad / "sound.mp4"), "w") as out:  # audio alone
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, 0
        for p in [*a.encode(frame), *a.encode()]:
            out.mux(p)
    with av.open(str(bad / "empty.mp4"), "w") as out:  # a video stream and no frame
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        out.start_encoding()
    good = make_clip(tmp_path / "ok.mkv", frames=4).read_bytes()
    assert good.count(b"V_MPEG4/ISO/AVC") == 1
    (bad / "unknown.mkv").write_bytes(good.replace(b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/XYZ"))
    out = tmp_path / "out"
    r = inproc("translate", str(bad), "--out", str(out), "--style", str(tiny_style), "--json",
            "--device", "cpu", "--compile", "off")  # fmt: skip
    assert r.code == 1, r.err
    records = {Path(rec["input"]).name: rec for rec in map(json.loads, r.out.splitlines())}
    assert {k: v["status"] for k, v in records.items()} == dict.fromkeys(
        ["empty.mp4", "sound.mp4", "text.mp4", "unknown.mkv"], "failed"
    )
    assert "not a video" in records["text.mp4"]["error"]
    assert "no video stream (only audio)" in records["sound.mp4"]["error"]
    assert "no video stream" in records["empty.mp4"]["error"]
    assert "unsupported video codec" in records["unknown.mkv"]["error"]
    for name, rec in records.items():  # one line each on stderr, no traceback
        assert f"{bad / name}: {rec['error']}" in r.err.splitlines()
    assert "Traceback" not in r.err
    assert not out.exists() or [p.name for p in out.iterdir()] in (
        [],
        [".posterforge-outputs.json"],
    )


def usage_error(capsys, *args: str) -> str:
    """Run the command line in this process; it must stop with exit code 2 and one line."""
    from posterforge.cli import main

    with pytest.raises(SystemExit) as stop:
        main(list(args))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("posterforge: error: "), err
    return err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--vcodec", "nosuch"], "--vcodec nosuch: this FFmpeg build has no such encoder"),
        (["--crf", "99"], "invalid --crf 99: use 0 to 51"),
        (["--vcodec", "mpeg4", "--crf", "20"], "--crf: the mpeg4 encoder has no CRF"),
        (["--vcodec", "libx264", "--webm"], "--vcodec libx264 cannot be written into .webm"),
    ],
)
def test_codec_problems_are_one_line_before_any_work(capsys, tiny_style, tmp_path, args, needle):
    src = make_clip(tmp_path / "clip.mp4", frames=2)
    out = tmp_path / ("clip.webm" if "--webm" in args else "clip-out.mp4")
    args = [a for a in args if a != "--webm"]
    err = usage_error(
        capsys, "translate", str(src), "--out", str(out), "-s", str(tiny_style), *args
    )
    assert needle in err  # and nothing else: no device line, so before the model loads
    assert not out.exists()


def test_out_naming_a_file_takes_one_video(capsys, tiny_style, tmp_path):
    src = make_clip(tmp_path / "a.mp4", frames=2)
    style = ["-s", str(tiny_style)]
    err = usage_error(
        capsys, "translate", str(src), str(src), "--out", str(tmp_path / "x.mp4"), *style
    )
    assert "exactly one video" in err
    err = usage_error(capsys, "translate", str(src), "--out", str(src), *style)
    assert "is the input itself" in err
    err = usage_error(capsys, "translate", str(src), "--out", str(tmp_path / "x.wmv"), *style)
    assert "cannot write .wmv videos" in err


def test_help_imports_neither_torch_nor_av():
    code = (
        "import sys\n"
        "from posterforge.cli import app\n"
        "try:\n    app(['translate', '--help'], prog_name='posterforge')\n"
        "except SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'av' not in sys.modules, "
        "[m for m in ('torch', 'av') if m in sys.modules]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "--vcodec" in r.stdout and "--crf" in r.stdout
