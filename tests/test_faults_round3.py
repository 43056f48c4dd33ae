"""Faults, round three (issue 27), each as a user meets it: a real FIFO, a real memory limit
and real concurrent runs (real processes where the fault needs one)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
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


@contextlib.contextmanager
def _fifos_unblocked_after(fifos: list[Path], seconds: float):
    """What a subprocess timeout did for an in-process run: a FIFO opened by mistake would block
    the run (and the suite) for ever, so after ``seconds`` each one is opened and closed again,
    every second, which ends a blocked open or read. Yields the list that says whether that
    happened (a test asserts it is empty)."""
    done, fired = threading.Event(), []

    def unblock() -> None:
        if done.wait(seconds):
            return
        fired.append(seconds)
        while not done.is_set():
            for fifo in fifos:
                os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))  # never blocks on Linux
            done.wait(1)

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    try:
        yield fired
    finally:
        done.set()
        watchdog.join()


def test_a_fifo_among_the_inputs_is_reported_never_opened(tiny_style, tmp_path, inproc):
    """A FIFO blocks whoever opens it until a writer comes: it must be a failure record, found
    in a folder or named as an argument, image or video suffix, and the run goes on."""
    _png(tmp_path / "t" / "a.png")
    fifos = [tmp_path / "t" / "p.png", tmp_path / "t" / "clip.mp4"]
    for fifo in fifos:
        os.mkfifo(fifo)
    out = tmp_path / "o"
    with _fifos_unblocked_after(fifos, 90) as fired:
        r = inproc("translate", str(tmp_path / "t"), "-o", str(out), "-s", str(tiny_style),
                   "--device", "cpu")  # fmt: skip
        again = inproc("translate", str(fifos[1]), str(tmp_path / "t" / "a.png"), "-o",
                       str(tmp_path / "o2"), "-s", str(tiny_style), "--device", "cpu")  # fmt: skip
    assert not fired, f"a run still blocked after {fired[0]} s: a FIFO was opened"
    assert r.code == 1, r.err
    assert (out / "a.png").is_file()
    for name in ("p.png", "clip.mp4"):
        assert f"{tmp_path / 't' / name}: not a regular file" in r.err, r.err
    assert "Traceback" not in r.err
    assert again.code == 1 and "clip.mp4: not a regular file" in again.err, again.err
    assert (tmp_path / "o2" / "a.png").is_file()


@pytest.mark.slow
def test_a_64_megapixel_frame_under_an_address_space_limit_is_translated(tiny_style, tmp_path):
    """Under a 10 GB address-space limit a 64-megapixel frame among small ones: before the memory
    gate (issue 23) it failed alone, out of memory; now the gate decides from the header (whole
    or in blended tiles, tests/test_tiling.py) and all three are translated, at full size."""
    src = tmp_path / "mixbig"
    _png(src / "a.png", 32, 32)
    Image.fromarray(np.zeros((8000, 8000, 3), np.uint8)).save(src / "b.png")
    _png(src / "c.png", 32, 32)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (10_000_000_000, 10_000_000_000))

    r = _posterforge("translate", str(src), "-o", str(tmp_path / "o"), "-s", str(tiny_style),
                     "--device", "cpu", "--compile", "off", preexec_fn=limit,
                     timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "translated 3, skipped 0, failed 0" in r.stderr
    out = tmp_path / "o"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "a.png", "b.png", "c.png"]  # fmt: skip
    assert Image.open(out / "b.png").size == (8000, 8000)


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


def test_the_store_tidies_what_killed_writers_left(tiny_style, pf_home):
    """A weights import killed mid-write leaves its temp file; the next look at the store
    removes it (its writer is dead), while a live writer's temp file stays."""
    from posterforge import api
    from posterforge.atomic import _host
    from posterforge.store import Store

    api.import_weights(tiny_style, "imp2")
    weights = Store().weights_dir
    finished = subprocess.Popen(["true"])  # a pid that no longer runs
    finished.wait()
    orphan = weights / f".imp2.safetensors.{finished.pid}-{_host()}-0badcafe.tmp"
    orphan.write_bytes(b"half a file")
    live = weights / f".imp3.safetensors.{os.getpid()}-{_host()}-0000beef.tmp"
    live.write_bytes(b"being written")
    assert [e.name for e in Store().entries()] == ["imp2"]
    assert not orphan.exists() and live.exists()


def test_weights_rm_removes_what_the_list_shows(inproc, pf_home):
    from posterforge.store import Store

    weights = Store().weights_dir
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "x.safetensors").mkdir()
    (weights / "y.safetensors").symlink_to(pf_home / "nowhere")
    listed = {e.name: e.problem for e in Store().entries()}
    assert listed == {"x": "a folder, not a weight file",
                      "y": f"a link to {pf_home / 'nowhere'}, which does not exist"}  # fmt: skip
    r = inproc("weights", "info", "x")
    assert r.code == 2 and "a folder, not a weight file (posterforge weights rm x" in r.err, r.err
    assert "did you mean" not in r.err
    for name in ("x", "y"):
        r = inproc("weights", "rm", name)
        assert r.code == 0 and r.out.startswith("removed "), r.err
    assert Store().entries() == []


def test_a_stored_file_without_its_checksum_is_checked_from_then_on(tiny_style, pf_home):
    from posterforge import api
    from posterforge.errors import WeightsError
    from posterforge.store import Store

    path = api.import_weights(tiny_style, "bare")
    path.with_suffix(".sha256").unlink()
    Store().verified("bare")  # adopted: the sidecar is written
    assert path.with_suffix(".sha256").is_file()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        Store().verified("bare")


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_generate_on_a_read_only_out_fails_in_one_line_before_the_model_loads(
    how, tmp_path, monkeypatch, inproc
):
    from .test_faults import _read_only

    def load_generator(*args, **kwargs):
        raise AssertionError("the model was loaded for a folder that cannot be written")

    monkeypatch.setattr("posterforge.generation.load_generator", load_generator)
    with _read_only(how, tmp_path, monkeypatch) as ro:
        out = ro / "posters"
        r = inproc("generate", "-g", "horror", "-n", "2", "-o", str(out), "--device", "cpu")
    assert r.code == 2 and r.out == "", r.err
    assert r.err == f"posterforge: error: cannot write to {out}: Read-only file system\n"


def test_warmup_on_a_full_disk_says_the_disk_is_full(inproc, tiny_style, monkeypatch):
    """Compiling writes its cache into the posterforge home: when that disk is full the line
    says so, not "no C compiler?"."""
    import errno

    import torch

    def compile(fn, **kw):
        def compiled(*args):
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/home/.cache/x.so")
            except OSError as e:
                raise RuntimeError("inductor: C++ compile error") from e

        return compiled

    monkeypatch.setattr(torch, "compile", compile)
    r = inproc("warmup", "--style", str(tiny_style), "--size", "16x16", "--device", "cpu")
    assert r.code == 2, r.err
    line = [x for x in r.err.splitlines() if x.startswith("posterforge: error:")]
    assert line == [
        "posterforge: error: compiling failed: no space left on the disk of the compile cache "
        f"({os.environ['POSTERFORGE_HOME']}/compile-cache); runs stay eager"
    ], r.err


def test_a_header_image_size_the_net_cannot_make_is_refused(tmp_path, inproc):
    """A genre cGAN always makes 64x128 posters: a header that claims 65536x65536 is one line."""
    import torch

    from posterforge import presets
    from posterforge.plugins import get_host
    from posterforge.weights import make_header, save_weights
    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreGenerator

    names = list(presets.labels("genres", get_host()).names)
    torch.manual_seed(0)
    net = GenreGenerator(GenreConfig(z_dim=100, ngf=4, image_size=(64, 128)), len(names))
    config = {"z_dim": 100, "ngf": 4, "image_size": [65536, 65536]}
    path = tmp_path / "huge.safetensors"
    save_weights(path, net.state_dict(), make_header("generator", "genre-cgan", config,
                                                     labels=names))  # fmt: skip
    r = inproc("generate", "-m", str(path), "-g", "horror", "-n", "1", "-o", str(tmp_path / "o"),
               "--device", "cpu")  # fmt: skip
    assert r.code == 2 and r.err.count("\n") == 1 and "image_size" in r.err, r.err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").glob("*.png"))
