"""Faults on the write path (issue 13): temp names that collide, two runs on one output folder,
a folder or a symlink where an output goes, read-only and full disks, kill -9 at random moments.

Processes are real where processes matter (two runs at once, kill -9). Full and read-only disks
are a tiny tmpfs where this machine lets us mount one (root), and an injected error everywhere.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge import atomic
from posterforge.api import translate
from posterforge.cli import main
from posterforge.images import is_temp_file
from posterforge.outputs import RECORD

from .conftest import ROOT, run_inprocess
from .reference_cyclegan import ReferenceResnetGenerator

LONG_NAME = "scene_0001_camera_A_take_07_graded_rec709_final_version_frame_{:05d}.png"
ENOSPC = os.strerror(errno.ENOSPC)


def _images(folder: Path, n: int, size: int = 16, name: str = "{:03d}.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / name.format(i))
    return folder


def _run(tiny_style: Path, inputs: list[Path], out: Path, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("compile", "off")
    return translate(inputs, out, style=str(tiny_style), **kw)


def _leftovers(folder: Path) -> list[str]:
    """Temp and lock files (everything we write is hidden until it is whole; the settings record
    of the outputs is the one hidden file that stays)."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != RECORD)


def _contents(folder: Path) -> dict[str, bytes]:
    files = (p for p in folder.rglob("*") if p.is_file() and p.name != RECORD)
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real entry point, in this process (so that faults can be injected)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of another process that runs for the length of the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _lock_text(pid: int, start: str = "-", host: str | None = None) -> str:
    return f"posterforge-lock {pid} {host or atomic._host()} {start} 0123456789abcdef\n"


@contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture(params=["tmpfs", "injected"])
def full_then_free(request, tmp_path, monkeypatch) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A folder on a full disk: a tiny tmpfs filled up, or every fsync failing with ENOSPC (where
    a full disk shows up on filesystems that allocate late); and a function that frees space."""
    disk = tmp_path / "disk"
    if request.param == "tmpfs":
        with _tmpfs(disk, "size=256k"):
            fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 65536)
            except OSError as e:
                assert e.errno == errno.ENOSPC
            finally:
                os.close(fd)
            yield disk, (disk / "filler").unlink
    else:
        disk.mkdir()
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            try:
                where = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                where = str(disk)  # no /proc: every write is on the full disk
            if where.startswith(str(disk) + os.sep):
                raise OSError(errno.ENOSPC, ENOSPC)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        yield disk, lambda: monkeypatch.setattr(os, "fsync", real_fsync)


@pytest.fixture
def full_disk(full_then_free) -> Path:
    return full_then_free[0]


def _written(disk: Path) -> list[str]:
    """Every file on the disk but the filler: there must be none after a failed write."""
    return sorted(
        str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file() and p.name != RECORD
    )


def _one_line(err: str) -> str:
    """The one error line (after the run's informational device line, if any)."""
    lines = [x for x in err.splitlines() if not x.startswith("posterforge: device ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- 1. temp files: unique per write, removed only when provably stale ---------------------------


@pytest.mark.slow
def test_long_names_at_batch_8_write_every_image_in_every_run(tiny_style, tmp_path):
    src = _images(tmp_path / "in", 200, name=LONG_NAME)
    out = tmp_path / "out"
    first: dict[str, bytes] | None = None
    for run in range(3):  # a fresh run, then two that rewrite everything
        records = _run(tiny_style, [src], out, batch_size=8, overwrite=run > 0)
        failed = {r.error for r in records if r.status != "ok"}
        assert [r.status for r in records].count("ok") == 200, failed
        assert len(list(out.glob("*.png"))) == 200 and _leftovers(out) == []
        got = _contents(out)
        first = first or got
        assert got == first


def test_temp_names_are_unique_and_name_their_writer(tmp_path):
    target = tmp_path / ("x" * 120 + ".png")
    names = {atomic.temp_path(target).name for _ in range(2000)}
    assert len(names) == 2000
    for name in names:
        assert name.startswith("." + "x" * 50 + ".") and is_temp_file(name)
        assert f".{os.getpid()}-{atomic._host()}-" in name
        assert len(name.encode()) < 255


def test_cleanup_removes_only_temps_whose_writer_is_provably_gone(tmp_path, live_pid):
    here, dead = atomic._host(), _dead_pid()
    elsewhere = "0" * 8 if here != "0" * 8 else "1" * 8
    keep = [
        f".a.png.{os.getpid()}-{here}-00000001.tmp",  # ours, being written
        f".a.png.{live_pid}-{here}-00000002.tmp",  # another live run on this host
        f".a.png.{dead}-{elsewhere}-00000003.tmp",  # another host: cannot ask, and it is recent
        ".a.png.0123abcd.tmp",  # an earlier version's name: no writer in it, and it is recent
        ".notes.tmp",  # not ours at all
        "a.png",
    ]
    remove = [f".a.png.{dead}-{here}-00000004.tmp", f".b.png.{dead}-{here}-00000005.tmp"]
    old = [f".a.png.{live_pid}-{elsewhere}-00000006.tmp", ".a.png.89abcdef.tmp"]
    for name in keep + remove + old:
        (tmp_path / name).write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    for name in old:  # untouched since long before the run began: a leftover, whoever wrote it
        os.utime(tmp_path / name, (an_hour_ago, an_hour_ago))
    assert atomic.remove_stale(tmp_path) == len(remove) + len(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_a_run_removes_what_killed_runs_left_and_nothing_of_live_ones(
    tiny_style, tmp_path, live_pid
):
    src = _images(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    here, dead = atomic._host(), _dead_pid()
    stale_temp = out / f".000.png.{dead}-{here}-0000000a.tmp"
    live_temp = out / f".000.png.{live_pid}-{here}-0000000b.tmp"
    stale_lock = atomic.lock_path(out / "001.png")
    for f in (stale_temp, live_temp):
        f.write_bytes(b"partial")
    stale_lock.write_text(_lock_text(dead))
    records = _run(tiny_style, [src], out)
    assert [r.status for r in records] == ["ok", "ok"]
    assert _leftovers(out) == [live_temp.name]


# --- 2. two runs on one output folder ------------------------------------------------------------


def test_locks_of_dead_processes_are_taken_over_and_live_ones_respected(tmp_path, live_pid):
    target = tmp_path / "a.png"
    lock = atomic.lock_path(target)
    lock.write_text(_lock_text(_dead_pid()))
    held = atomic.claim(target)
    assert held is not None and lock.read_bytes() == held.content
    assert f" {os.getpid()} ".encode() in held.content
    assert not atomic.held_by_other(target)  # our own lock
    held.release()
    assert not lock.exists()

    lock.write_text(_lock_text(live_pid))
    assert atomic.claim(target) is None and atomic.held_by_other(target)
    if Path(f"/proc/{live_pid}/stat").exists():  # the pid runs, but it is not the lock's process
        lock.write_text(_lock_text(live_pid, start="1"))
        taken = atomic.claim(target)
        assert taken is not None
        taken.release()

    lock.write_text("my notes\n")  # not ours: never removed, the output fails instead
    with pytest.raises(FileExistsError, match="not a posterforge lock"):
        atomic.claim(target)
    assert lock.read_text() == "my notes\n"
    very_long = tmp_path / ("y" * 250)
    assert len(atomic.lock_path(very_long).name.encode()) < 255


@pytest.mark.parametrize("other_run", ["writes it", "dies"])
def test_an_output_another_run_holds_is_waited_for(tiny_style, tmp_path, other_run):
    src = _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "001.png"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = atomic.lock_path(target)
    lock.write_text(_lock_text(holder.pid))

    def finish() -> None:
        time.sleep(1.0)
        if other_run == "writes it":
            target.write_bytes(b"their output")
            lock.unlink()
        holder.kill()
        holder.wait()

    helper = threading.Thread(target=finish)
    helper.start()
    try:
        records = {Path(r.input).name: r for r in _run(tiny_style, [src], out)}
    finally:
        helper.join()
    assert records["000.png"].status == records["002.png"].status == "ok"
    rec = records["001.png"]
    if other_run == "writes it":
        assert (rec.status, rec.error) == ("skipped", "finished by another process")
        assert target.read_bytes() == b"their output"
    else:  # its lock is stale now: the output is made here
        assert rec.status == "ok" and Image.open(target).size == (16, 16)
    assert _leftovers(out) == []


def test_overwrite_does_not_redo_what_another_run_has_just_replaced(tiny_style, tmp_path):
    src = _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    _run(tiny_style, [src], out)
    a_day_ahead = time.time() + 86400  # a clock ahead of ours (NFS): not a sign of another run
    os.utime(out / "002.png", (a_day_ahead, a_day_ahead))
    target = out / "001.png"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = atomic.lock_path(target)
    lock.write_text(_lock_text(holder.pid))

    def replace() -> None:
        time.sleep(1.0)
        (out / "new.tmp").write_bytes(b"their output")
        os.replace(out / "new.tmp", target)
        lock.unlink()
        holder.kill()
        holder.wait()

    helper = threading.Thread(target=replace)
    helper.start()
    try:
        records = {Path(r.input).name: r for r in _run(tiny_style, [src], out, overwrite=True)}
    finally:
        helper.join()
    assert [records[f"00{i}.png"].status for i in range(3)] == ["ok", "skipped", "ok"]
    assert records["001.png"].error == "finished by another process"
    assert target.read_bytes() == b"their output"
    assert (out / "002.png").stat().st_mtime < a_day_ahead  # rewritten, not taken for new


@pytest.mark.slow
def test_two_processes_on_one_out_share_the_work(tiny_style, tmp_path):
    n = 120
    src = _images(tmp_path / "in", n, size=48)
    reference, out = tmp_path / "reference", tmp_path / "out"
    args = ["translate", str(src), "-s", str(tiny_style), "--json", "-q", "--compile", "off",
            "--device", "cpu"]  # fmt: skip
    single = run_inprocess(*args, "-o", str(reference))  # the reference: one run, no race
    assert single.code == 0, single.err
    cmd = [sys.executable, "-m", "posterforge", *args, "-o", str(out)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    records = [json.loads(line) for stdout, _ in outputs for line in stdout.splitlines()]
    assert len(records) == 2 * n
    translated = sum(r["status"] == "ok" for r in records)
    assert translated == n  # not 2n: each output was made once
    reasons = {r["error"] for r in records if r["status"] == "skipped"}
    assert reasons <= {"finished by another process", "output exists (use --overwrite)"}
    assert _contents(out) == _contents(reference)
    assert _leftovers(out) == []


# --- 3. and 4. a folder or a symlink where an output goes ----------------------------------------


def test_an_output_path_that_is_a_folder_fails(tiny_style, tmp_path, capsys):
    src = _images(tmp_path / "in", 2)
    out = tmp_path / "out"
    (out / "000.png").mkdir(parents=True)
    records = {Path(r.input).name: r for r in _run(tiny_style, [src], out)}
    rec = records["000.png"]
    assert rec.status == "failed" and rec.output is None
    assert rec.error == f"cannot write {out / '000.png'}: a folder of that name is in the way"
    assert records["001.png"].status == "ok"

    args = ["-s", str(tiny_style), "--compile", "off", "--device", "cpu"]
    code, _, err = _cli(capsys, "translate", str(src), "-o", str(out), *args)
    assert code == 1
    assert f"000.png: cannot write {out / '000.png'}: a folder of that name is in the way" in err


def test_a_symlinked_folder_cannot_send_writes_outside_out(tiny_style, tmp_path):
    src = tmp_path / "in"
    _images(src / "sub", 2)
    _images(src / "ok", 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    (out / "ok").symlink_to(out / "real", target_is_directory=True)  # stays inside: fine
    records = {str(Path(r.input).relative_to(src)): r for r in _run(tiny_style, [src], out)}
    for name in ("sub/000.png", "sub/001.png"):
        rec = records[name]
        assert rec.status == "failed"
        assert rec.error.startswith(f"cannot write {out / name}: its folder leads to {elsewhere}")
        assert "outside the output folder" in rec.error
    assert list(elsewhere.iterdir()) == []
    assert records["ok/000.png"].status == "ok" and (out / "real" / "000.png").is_file()


# --- 5. a read-only output folder ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_a_read_only_out_fails_in_one_line_before_the_model_loads(
    how, tiny_style, tmp_path, monkeypatch, capsys
):
    src = _images(tmp_path / "in", 3)

    def load_engine(*args, **kwargs):
        raise AssertionError("the model was loaded for a folder that cannot be written")

    monkeypatch.setattr("posterforge.translation.load_engine", load_engine)
    args = ["translate", str(src), "-s", str(tiny_style), "--compile", "off", "--device", "cpu"]
    with _read_only(how, tmp_path, monkeypatch) as ro:
        out = ro / "out"
        code, stdout, err = _cli(capsys, *args, "-o", str(out))
    assert code == 2 and stdout == ""
    assert _one_line(err) == f"posterforge: error: cannot write to {out}: Read-only file system"


@contextmanager
def _read_only(how: str, tmp_path: Path, monkeypatch) -> Iterator[Path]:
    if how == "tmpfs":
        with _tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
            yield ro
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    real_open = os.open

    def os_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(ro)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    yield ro


def test_a_finished_run_on_a_read_only_out_still_checks_out(tiny_style, tmp_path, capsys):
    src = _images(tmp_path / "in", 2)
    out = tmp_path / "out"
    _run(tiny_style, [src], out)
    with _tmpfs(tmp_path / "ro", "size=64k") as ro:
        shutil.copytree(out, ro / "out")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        code, _, err = _cli(capsys, "translate", str(src), "-o", str(ro / "out"), "-s",
                            str(tiny_style), "--compile", "off")  # fmt: skip
    assert code == 0, err
    assert "skipped 2, failed 0" in err


# --- 6. full disks: one line, exit 1, nothing partial under a real name ---------------------------


def test_translate_on_a_full_disk(full_then_free, tiny_style, tmp_path, capsys):
    full_disk, free = full_then_free
    src = _images(tmp_path / "in", 3)
    out = full_disk / "out"
    args = ["-s", str(tiny_style), "--compile", "off", "--device", "cpu", "--json"]
    code, stdout, err = _cli(capsys, "translate", str(src), "-o", str(out), *args)
    assert code == 1
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["status"] for r in records] == ["failed"] * 3
    for r in records:
        assert r["error"] == f"cannot write {out / Path(r['input']).name}: {ENOSPC}"
    assert "Traceback" not in err
    assert [p for p in _written(full_disk) if p != "filler"] == []
    free()  # then the same command again: what a run on a roomy disk writes
    code, _, err = _cli(capsys, "translate", str(src), "-o", str(out), *args)
    assert code == 0, err
    _cli(capsys, "translate", str(src), "-o", str(tmp_path / "straight"), *args)
    assert _contents(out) == _contents(tmp_path / "straight")
    assert _leftovers(out) == []


def test_generate_on_a_full_disk(full_then_free, tmp_path, capsys):
    full_disk, free = full_then_free
    out = full_disk / "posters"
    args = ["generate", "--genre", "horror", "-n", "2", "--out", str(out), "--device", "cpu"]
    code, _, err = _cli(capsys, *args)
    assert code == 1
    line = _one_line(err)
    assert line == f"posterforge: error: cannot write {out / 'horror-00000.png'}: {ENOSPC}"
    assert [p for p in _written(full_disk) if p != "filler"] == []
    free()
    code, _, err = _cli(capsys, *args)
    assert code == 0, err
    straight = [a if a != str(out) else str(tmp_path / "straight") for a in args]
    _cli(capsys, *straight)
    assert _contents(out) == _contents(tmp_path / "straight")


def test_weights_import_on_a_full_disk(full_disk, tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    ckpt = tmp_path / "latest_net_G_A.pth"
    torch.save(ReferenceResnetGenerator(ngf=4, n_blocks=1).state_dict(), ckpt)
    monkeypatch.setenv("POSTERFORGE_HOME", str(full_disk / "home"))
    code, stdout, err = _cli(capsys, "weights", "import", str(ckpt), "--name", "tiny")
    assert code == 1 and stdout == ""
    line = _one_line(err)
    assert line.startswith("posterforge: error: cannot write ") and str(full_disk) in line
    assert line.endswith(f"tiny.safetensors: {ENOSPC}")
    assert [p for p in _written(full_disk) if p != "filler"] == []


def test_a_training_checkpoint_on_a_full_disk(tmp_path, monkeypatch, capsys):
    from .test_train_run import TINY, _domain, _train_args

    _domain(tmp_path / "a", 4, (40, 0, -40), 1)
    _domain(tmp_path / "b", 4, (-40, 0, 40), 2)
    run = tmp_path / "run"
    checkpoints = str(run / "checkpoints") + os.sep
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up just when the first checkpoint is written
        if os.readlink(f"/proc/self/fd/{fd}").startswith(checkpoints):
            raise OSError(errno.ENOSPC, ENOSPC)
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file is written")
    monkeypatch.setattr(os, "fsync", fsync)
    args = _train_args(tmp_path / "a", tmp_path / "b", "full", run, "--max-steps", "4")
    args += ["--device", "cpu", *(x for item in TINY for x in ("--set", item))]
    code, _, err = _cli(capsys, *args)
    assert code == 1 and "Traceback" not in err  # progress lines, then the error
    line = _one_line(err.splitlines()[-1] + "\n")
    assert line == f"posterforge: error: cannot write {checkpoints}step-00000002.pt: {ENOSPC}"
    assert [p.name for p in (run / "checkpoints").iterdir()] == []
    # space again: --resume then finishes exactly as a run that never hit the full disk
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, _, err = _cli(capsys, "train", "translator", "--resume", str(run), "--device", "cpu")
    assert code == 0, err
    renamed = {str(run): str(tmp_path / "straight"), "full": "straight"}
    straight = [renamed.get(a, a) for a in args]
    code, _, err = _cli(capsys, *straight)
    assert code == 0, err
    from posterforge.weights import load_weights

    resumed = load_weights(run / "model.safetensors").tensors
    reference = load_weights(tmp_path / "straight" / "model.safetensors").tensors
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in resumed)
    # and a full disk while exporting: one line, nothing partial in the store, then it works
    store = Path(os.environ["POSTERFORGE_HOME"]) / "weights"
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, ENOSPC)

    monkeypatch.setattr(os, "fsync", no_space)
    code, stdout, err = _cli(capsys, "train", "export", str(run), "--name", "exported")
    assert code == 1 and stdout == ""
    line = _one_line(err)
    assert line.startswith("posterforge: error: cannot write ") and line.endswith(ENOSPC)
    assert sorted(p.name for p in store.iterdir() if "exported" in p.name) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, stdout, err = _cli(capsys, "train", "export", str(run), "--name", "exported")
    assert code == 0 and stdout.strip().endswith("exported.safetensors"), err


def test_other_os_errors_at_the_cli_edge_are_one_line():
    e = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/x/y.png")
    assert atomic.os_error_line(e) == f"/x/y.png: {os.strerror(errno.EACCES)}"
    assert atomic.os_error_line(OSError(errno.EIO, "I/O error")) == "I/O error"


# --- 7. kill -9 at random moments ----------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_at_random_moments_then_a_rerun_gives_an_uninterrupted_result(tiny_style, tmp_path):
    """10 kills under the default settings: the compile decision is taken from the job, not from
    timing, so every run of the job makes the same one."""
    src = _images(tmp_path / "in", 40, size=96)
    reference, out = tmp_path / "reference", tmp_path / "out"
    cmd = [
        sys.executable, "-m", "posterforge", "translate", str(src), "-s", str(tiny_style),
        "-q", "--device", "cpu",
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen([*cmd, "-o", str(reference)], stdout=subprocess.DEVNULL, cwd=ROOT)
    first = None
    while proc.poll() is None:
        if first is None and any(reference.glob("*.png")):
            first = time.monotonic() - start
        time.sleep(0.01)
    assert proc.returncode == 0
    whole = time.monotonic() - start
    expected = _contents(reference)
    rng = random.Random(13)
    killed = runs = 0
    while killed < 10:
        runs += 1
        assert runs <= 30, f"only {killed} of {runs} runs were still running when killed"
        extra = ["--overwrite"] if runs % 2 else []  # rewrites: a kill may hit a replace
        proc = subprocess.Popen([*cmd, "-o", str(out), *extra], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
        time.sleep(rng.uniform(0.8 * (first or 0.0), whole))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        for name, data in _contents(out).items():  # whatever is visible is whole and right
            if not Path(name).name.startswith("."):
                assert data == expected[name], name
    final = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert final.returncode == 0, final.stderr
    assert _contents(out) == expected
    assert _leftovers(out) == []
