"""SIGTERM and SIGHUP (``timeout``, Slurm, ``docker stop``, systemd, a closed terminal) end every
streaming command the way the first Ctrl-C does: what is in flight lands on disk and is
reported, one line says how to resume, and the exit code is 128 + the signal (143, 129). Each is
a real process sent a real signal; the re-run then finishes the job."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT


def _start(*args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "posterforge", *args, "--device", "cpu", "--json"]
    pipe = subprocess.PIPE
    return subprocess.Popen(cmd, stdout=pipe, stderr=pipe, text=True, cwd=ROOT)


def _signal_after(proc: subprocess.Popen, out: Path, count: int, sig: int) -> tuple[str, str]:
    deadline = time.time() + 180
    while time.time() < deadline and len(list(out.glob("*.png"))) < count:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(sig)
    return proc.communicate(timeout=120)


def _check_stopped(proc, stdout: str, stderr: str, out: Path, sig: int, words: str) -> None:
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and stderr.splitlines()[-1] == lines[0], stderr
    assert re.search(words, lines[0]), lines[0]
    written = sorted(str(p) for p in out.glob("*.png"))
    records = [json.loads(line) for line in stdout.splitlines()]
    key = "output" if records and "output" in records[0] else "path"
    assert sorted(r[key] for r in records if r["status"] == "ok") == written  # each one reported
    for f in written:
        Image.open(f).load()  # and whole


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_translate_stops_on_a_termination_signal_like_ctrl_c(tiny_style, tmp_path, sig):
    n = 60
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 256, (96, 96, 3), dtype=np.uint8)
        (tmp_path / "in").mkdir(exist_ok=True)
        Image.fromarray(arr).save(tmp_path / "in" / f"{i:03d}.png")
    out = tmp_path / "out"
    args = ("translate", str(tmp_path / "in"), "-o", str(out), "-s", str(tiny_style), "-b", "2",
            "--compile", "off")  # fmt: skip
    proc = _start(*args)
    stdout, stderr = _signal_after(proc, out, 3, sig)
    _check_stopped(proc, stdout, stderr, out, sig, r"interrupted: translated \d+, .* left; run")
    assert 3 <= len(list(out.glob("*.png"))) < n
    again = _start(*args)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert len(list(out.glob("*.png"))) == n


@pytest.mark.slow
def test_generate_stops_on_sigterm_like_ctrl_c(tmp_path):
    out = tmp_path / "posters"
    args = ("generate", "-g", "horror", "-n", "4000", "-b", "8", "-o", str(out))
    proc = _start(*args)
    stdout, stderr = _signal_after(proc, out, 16, signal.SIGTERM)
    _check_stopped(proc, stdout, stderr, out, signal.SIGTERM, r"interrupted: generated \d+")
    assert 16 <= len(list(out.glob("*.png"))) < 4000


@pytest.mark.slow
def test_video_translation_stops_on_sigterm_and_resumes(tiny_style, tmp_path, inproc):
    """A video: the segments finished so far are kept, one line says how to resume, 143; the
    re-run goes on after them to a whole file."""
    import os

    from .test_video import finished_segments, frames_of, make_clip

    src = make_clip(tmp_path / "film.mp4", frames=72)
    dest = tmp_path / "out" / "film.mp4"
    args = [sys.executable, "-m", "posterforge", "translate", str(src), "--out", str(dest),
            "--style", str(tiny_style), "--device", "cpu", "--compile", "off"]  # fmt: skip
    env = {**os.environ, "POSTERFORGE_SEGMENT_SECONDS": "0.5"}
    pipe = subprocess.PIPE
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=pipe, stderr=pipe, text=True)
    deadline = time.time() + 180
    while not finished_segments(dest.with_name(".film.mp4.parts")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr.splitlines()[-1], stderr
    r = inproc(*args[3:], env=env)
    assert r.code == 0 and "resuming after" in r.err, r.err
    assert frames_of(dest)[1] == frames_of(src)[1]  # every frame, once, at its time


@pytest.mark.slow
def test_frames_stops_on_sigterm_and_resumes(tmp_path):
    from .test_frames import make_film, moving

    film = make_film(tmp_path / "film.mkv", moving(600, w=640, h=480))  # long enough to stop
    out = tmp_path / "frames"
    args = ("frames", str(film), "--out", str(out), "--every", "0.05")
    proc = subprocess.Popen([sys.executable, "-m", "posterforge", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 180
    while len(list(out.rglob("*.png"))) < 5:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "resume" in stderr.splitlines()[-1], stderr
    kept = len(list(out.rglob("*.png")))
    again = subprocess.run([sys.executable, "-m", "posterforge", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(list(out.rglob("*.png"))) > kept
