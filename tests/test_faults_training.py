"""Faults, round three (issue 27), the training side: labels files that point outside --data or
hold a huge line, checkpoints on a full disk or holding a hostile pickle, two trainings into one
run folder, a read-only store."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from posterforge.errors import PosterforgeError

from .test_training_data import _genres, _labels_env


def test_labels_rows_outside_the_data_folder_are_refused_unread(tmp_path):
    from posterforge.training.labelled import read_labelled

    data = _labels_env(tmp_path / "data", ["a.png", "b.png", "sub/c.png", "d.png"])
    outside = _labels_env(tmp_path / "outside", ["secret.png"])
    (data / "link.png").symlink_to(outside / "secret.png")  # a link that points out
    (data / "away").symlink_to(outside, target_is_directory=True)
    # a link that stays in: fine (to a file no other row names: that would be a duplicate)
    (data / "inner.png").symlink_to(data / "d.png")
    (data / "labels.csv").write_text(
        "path,genres\n"
        "a.png,horror\n"  # 2
        "../outside/secret.png,horror\n"  # 3
        f"{outside / 'secret.png'},horror\n"  # 4: absolute
        "/etc/passwd,horror\n"  # 5
        "sub/../../outside/secret.png,war\n"  # 6
        "link.png,horror\n"  # 7
        "away/secret.png,horror\n"  # 8
        "~/secret.png,horror\n"  # 9
        "sub/c.png,drama\n"  # 10
        "inner.png,comedy\n"  # 11
    )
    got = read_labelled(data, _genres(), data / "labels.csv")
    assert [it.path.name for it in got.items] == ["a.png", "c.png", "inner.png"]
    assert all(it.path.resolve().is_relative_to(data.resolve()) for it in got.items)
    assert got.problems == [
        f"labels.csv:{n}: path {p!r} is outside the data folder"
        for n, p in [
            (3, "../outside/secret.png"), (4, str(outside / "secret.png")), (5, "/etc/passwd"),
            (6, "sub/../../outside/secret.png"), (7, "link.png"), (8, "away/secret.png"),
            (9, "~/secret.png"),
        ]
    ]  # fmt: skip
    assert got.summary_line() == (
        "labels.csv: 10 rows read, 3 used, 7 dropped (7 with a path outside the data folder; "
        "first at lines 3, 4, 5)"
    )


def test_a_training_run_never_reads_a_file_outside_its_data_folder(tmp_path, inproc):
    """The CLI summary names the refused rows; the file outside is never opened."""
    data = _labels_env(tmp_path / "data", [f"p{i}.png" for i in range(4)])
    rows = [f"p{i}.png,horror" for i in range(4)] + ["../secret.png,horror", "/etc/passwd,war"]
    (data / "labels.csv").write_text("path,genres\n" + "\n".join(rows) + "\n")
    (tmp_path / "secret.png").write_bytes(b"not an image: a read would say so")
    r = inproc(
        "train", "generator", "--data", str(data), "--labels", str(data / "labels.csv"),
        "--name", "g", "--out", str(tmp_path / "run"), "--max-steps", "1", "--device", "cpu",
        "--balance", "none",
        *[a for s in ("ngf=8", "ndf=8", "batch_size=2") for a in ("--set", s)],
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "labels.csv: 6 rows read, 4 used, 2 dropped (2 with a path outside the data folder" \
        in r.err  # fmt: skip
    assert "labels.csv:6: path '../secret.png' is outside the data folder" in r.err
    assert "labels.csv:7: path '/etc/passwd' is outside the data folder" in r.err
    assert "not an image" not in r.err and "Warning" not in r.err, r.err


def test_a_huge_line_in_a_labels_file_is_its_rows_error_in_bounded_memory(tmp_path, monkeypatch):
    import tracemalloc

    from posterforge.training import labels_file
    from posterforge.training.labelled import read_labelled

    data = _labels_env(tmp_path, ["a.png", "b.png", "c.png"])
    huge = "x" * (8 << 20)  # 8 MB on one line: under a 64 KiB bound it stands for 1 GiB
    for name, rows in {
        "labels.csv": ["path,genres", "a.png,horror", f"{huge}.png,horror", "b.png,drama",
                       f'c.png,"{"y" * 200_000}"', "c.png,war"],
        "labels.jsonl": ['{"path": "a.png", "genres": "horror"}', f'{{"path": "{huge}"}}',
                         '{"path": "b.png", "genres": "drama"}'],
    }.items():  # fmt: skip
        (data / name).write_text("\r\n".join(rows) + "\r\n")
    monkeypatch.setattr(labels_file, "MAX_LINE", 1 << 16)
    del huge
    tracemalloc.start()
    try:
        got = read_labelled(data, _genres(), data / "labels.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"{peak:,} bytes"
    assert [it.path.name for it in got.items] == ["a.png", "b.png", "c.png"]
    assert got.problems == [
        "labels.csv:3: line longer than 65,536 characters, skipped",
        "labels.csv:5: line longer than 65,536 characters, skipped",
    ]
    assert got.summary_line() == (
        "labels.csv: 5 rows read, 3 used, 2 dropped (2 with a line too long; first at lines 3, 5)"
    )
    got = read_labelled(data, _genres(), data / "labels.jsonl")
    assert [it.path.name for it in got.items] == ["a.png", "b.png"]
    assert got.problems == ["labels.jsonl:2: line longer than 65,536 characters, skipped"]
    # the default bound: a long field is the csv module's "field larger than field limit"
    monkeypatch.undo()
    got = read_labelled(data, _genres(), data / "labels.csv")
    assert got.problems[0] == "labels.csv:3: line longer than 1,048,576 characters, skipped"
    assert got.problems[1].startswith("labels.csv:5: not a CSV row (field larger than field")
    big = data / "header.csv"
    big.write_text("path," + "g" * (2 << 20) + "\na.png,horror\n")
    with pytest.raises(PosterforgeError, match=r"header.csv:1: header: longer than 1,048,576"):
        read_labelled(data, _genres(), big)


def _generator_args(data: Path, run: Path, *extra: str) -> list[str]:
    return [
        "train", "generator", "--data", str(data), "--labels", str(data / "labels.csv"),
        "--preset", "posters-demo", "--name", run.name, "--out", str(run), "--device", "cpu",
        *[a for s in ("ngf=8", "ndf=8", "batch_size=4", "train.checkpoint_every=2")
          for a in ("--set", s)], *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def posters(tmp_path_factory) -> Path:
    from posterforge_genre_cgan.demo_data import make_demo_posters

    out = tmp_path_factory.mktemp("posters")
    make_demo_posters(out, per_genre=3, seed=0)
    return out


def test_a_checkpoint_on_a_full_tmpfs_is_one_line_and_the_resume_is_exact(
    tmp_path, posters, inproc
):
    """torch's zip writer, failing to close after the disk filled up, raised its own RuntimeError
    over the OSError: two tracebacks. Now: the OSError's one line; room again, the resume
    finishes as a run that never stopped."""
    import subprocess

    from posterforge.weights import load_weights

    from .test_faults import ENOSPC, _tmpfs

    with _tmpfs(tmp_path / "disk", "size=6M") as disk:  # one checkpoint fits (3 MB), not two
        run = disk / "run"
        r = inproc(*_generator_args(posters, run, "--max-steps", "4"))
        assert r.code == 1 and "Traceback" not in r.err and "enforce fail" not in r.err, r.err
        # the first write of step 4 to fail: its checkpoint, or the TensorBoard events before it
        last = r.err.splitlines()[-1]
        failed = re.fullmatch(f"posterforge: error: cannot write (.+): {ENOSPC}", last)
        assert failed, r.err
        assert failed[1] == str(run / "checkpoints" / "step-00000004.pt") or re.fullmatch(
            re.escape(str(run)) + r"/events\.out\.tfevents\.[^/]+", failed[1]
        ), r.err
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002.pt"]
        subprocess.run(["mount", "-o", "remount,size=64M", str(disk)], check=True)
        r = inproc("train", "generator", "--resume", str(run), "--device", "cpu")
        assert r.code == 0, r.err
        resumed = load_weights(run / "model.safetensors").tensors
    straight = tmp_path / "straight"
    r = inproc(*_generator_args(posters, straight, "--max-steps", "4"))
    assert r.code == 0, r.err
    reference = load_weights(straight / "model.safetensors").tensors
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in resumed)


class _Payload:
    """What a hostile checkpoint holds: unpickling it would run ``touch PWNED``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_pickle_among_the_checkpoints_is_refused_in_one_line(tmp_path, posters, inproc):
    run = tmp_path / "run"
    r = inproc(*_generator_args(posters, run, "--max-steps", "2"))
    assert r.code == 0, r.err
    marker = tmp_path / "PWNED"
    hostile = run / "checkpoints" / "step-00000004.pt"
    torch.save({"step": 4, "task": _Payload(marker)}, hostile)
    r = inproc("train", "export", str(run), "--name", "exported")
    assert r.code == 2 and r.out == "" and "Traceback" not in r.err, r.err
    assert r.err.splitlines() == [
        f"posterforge: error: {hostile}: refused: it holds Python objects other than tensors "
        "(posix.system), so it was not loaded"
    ]
    r = inproc("train", "generator", "--resume", str(run), "--device", "cpu", "--max-steps", "4")
    assert r.code == 0, r.err
    assert "weights_only" not in r.err and "will likely succeed" not in r.err, r.err
    assert f"posterforge: warning: skipping checkpoint {hostile}: refused: it holds" in r.err
    older = run / "checkpoints" / "step-00000002.pt"
    assert f"posterforge: resuming from {older}, the newest checkpoint that loads" in r.err
    assert not marker.exists()


def test_two_trainings_started_together_into_one_run_folder_one_is_refused(tmp_path, posters):
    """Real processes, started at once: before the lock both ran, and the log held both."""
    import json
    import subprocess
    import sys

    from .conftest import ROOT

    run = tmp_path / "runs" / "g2s"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "posterforge",
                *_generator_args(
                    posters,
                    run,
                    "--max-steps",
                    "4",
                    "--seed",
                    str(seed),
                    "--set",
                    "train.log_every=1",
                ),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err[-2000:] for _, _, err in results]
    won = next(i for i, (code, _, _) in enumerate(results) if code == 0)
    refused = results[1 - won][2]
    assert "Traceback" not in refused
    assert refused.splitlines()[-1].startswith(
        f"posterforge: error: {run}: another training runs in this folder now (pid "
    ) or refused.splitlines()[-1].endswith(f"holds a run already: resume it with --resume {run}")
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert json.loads((run / "request.json").read_text())["seed"] == won
    assert not list(run.glob(".*.lock"))  # released when the run ended


def test_a_read_only_store_is_said_before_any_training(tmp_path, posters, inproc):
    from .test_faults import _tmpfs

    with _tmpfs(tmp_path / "home", "ro,size=64k") as home:
        run = tmp_path / "run"
        r = inproc(*_generator_args(posters, run, "--max-steps", "2"),
                   env={"POSTERFORGE_HOME": str(home)})  # fmt: skip
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert r.err.splitlines() == [
        f"posterforge: error: cannot write to {home / 'weights'}: Read-only file system "
        "(the weight store: set POSTERFORGE_HOME)"
    ]
    assert not run.exists()  # nothing trained


def test_the_run_folder_model_is_the_stored_file(tmp_path, posters, inproc):
    from posterforge.weights import read_header

    run = tmp_path / "run"
    r = inproc(*_generator_args(posters, run, "--max-steps", "1"))
    assert r.code == 0, r.err
    stored = Path(r.out.strip())
    assert read_header(run / "model.safetensors")["provenance"]["data"]  # the label counts
    assert (run / "model.safetensors").read_bytes() == stored.read_bytes()


@pytest.mark.parametrize("how", ["zip", "top-level", "legacy", "raw-pickle", "protocol-0"])
def test_every_shape_of_hostile_checkpoint_is_one_line_and_no_warning(tmp_path, how):
    """A raw ``pickle.dump`` file (not torch.save) made torch print a multi-line UserWarning
    about its pickle protocol before our line (issue 23)."""
    import pickle
    import warnings

    from posterforge.training.checkpoints import load_checkpoint

    marker = tmp_path / "PWNED"
    path = tmp_path / "step-00000004.pt"
    evil = {"step": 4, "task": _Payload(marker)}
    if how == "zip":
        torch.save(evil, path)
    elif how == "top-level":
        torch.save(_Payload(marker), path)
    elif how == "legacy":
        torch.save(evil, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=0 if how == "protocol-0" else 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PosterforgeError) as e:
            load_checkpoint(path)
    assert [str(w.message) for w in caught] == []
    assert str(e.value).startswith(f"{path}: refused: it holds Python objects other than tensors")
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)
    assert not marker.exists()
