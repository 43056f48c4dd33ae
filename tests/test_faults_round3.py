"""Faults, round three (issue 27), each as a user meets it: a real process, a real FIFO, a real
memory limit, real concurrent runs."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT


def _png(path: Path, w: int = 16, h: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)
    return path


def _posterforge(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "posterforge", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout, **kw)


def test_a_fifo_among_the_inputs_is_reported_never_opened(tiny_style, tmp_path):
    """A FIFO blocks whoever opens it until a writer comes: it must be a failure record, found
    in a folder or named as an argument, image or video suffix, and the run goes on."""
    _png(tmp_path / "t" / "a.png")
    os.mkfifo(tmp_path / "t" / "p.png")
    os.mkfifo(tmp_path / "t" / "clip.mp4")
    out = tmp_path / "o"
    r = _posterforge("translate", str(tmp_path / "t"), "-o", str(out), "-s", str(tiny_style),
                     "--device", "cpu", timeout=90)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert (out / "a.png").is_file()
    for name in ("p.png", "clip.mp4"):
        assert f"{tmp_path / 't' / name}: not a regular file" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = _posterforge("translate", str(tmp_path / "t" / "clip.mp4"), str(tmp_path / "t" / "a.png"),
                     "-o", str(tmp_path / "o2"), "-s", str(tiny_style), "--device", "cpu",
                     timeout=90)  # fmt: skip
    assert r.returncode == 1 and "clip.mp4: not a regular file" in r.stderr, r.stderr
    assert (tmp_path / "o2" / "a.png").is_file()


@pytest.mark.slow
def test_one_image_too_big_for_memory_fails_alone(tiny_style, tmp_path):
    """Under a 10 GB address-space limit a 64-megapixel frame cannot be translated: it is that
    image's failure, naming a --size that fits, and the images after it are done."""
    src = tmp_path / "mixbig"
    _png(src / "a.png", 32, 32)
    Image.fromarray(np.zeros((8000, 8000, 3), np.uint8)).save(src / "b.png")
    _png(src / "c.png", 32, 32)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (10_000_000_000, 10_000_000_000))

    r = _posterforge("translate", str(src), "-o", str(tmp_path / "o"), "-s", str(tiny_style),
                     "--device", "cpu", "--compile", "off", preexec_fn=limit,
                     timeout=600)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert f"{src / 'b.png'}: out of memory at 8000x8000" in r.stderr, r.stderr
    assert "--size 4000" in r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if not p.name.startswith(".")) == [
        "a.png", "c.png"]  # fmt: skip


@pytest.mark.slow
def test_generate_runs_started_together_share_the_work(tmp_path):
    """Three runs on one folder split the posters between them: each poster is made once, and
    the files are those one run alone writes."""
    out, n = tmp_path / "g", 600
    cmd = [sys.executable, "-m", "posterforge", "generate", "-g", "horror", "-n", str(n), "-b",
           "16", "-o", str(out), "--device", "cpu", "--json", "--seed", "3"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    made = [json.loads(line) for o, _ in outs for line in o.splitlines()]
    written = [r["path"] for r in made if r["status"] == "ok"]
    assert len(written) == len(set(written)) == n  # none made twice, none missing
    assert len(made) == 3 * n  # every run reports every poster: its own, or skipped
    alone = tmp_path / "alone"
    r = _posterforge("generate", "-g", "horror", "-n", "40", "-b", "16", "-o", str(alone),
                     "--device", "cpu", "--seed", "3", timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    for f in sorted(alone.glob("*.png")):
        assert f.read_bytes() == (out / f.name).read_bytes(), f.name
