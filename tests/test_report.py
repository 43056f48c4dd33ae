"""``posterforge report`` (one self-contained HTML page of runs) and ``posterforge runs`` (the
runs under a folder, with their status), on tiny runs of the harness's toy task."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from posterforge.errors import PosterforgeError
from posterforge.training.harness import Trainer
from posterforge.training.runinfo import RunInfo, read_run, step_times
from posterforge.training.stopping import TrainingInterrupted
from tests.test_training_harness import config, write_images
from tests.test_training_metrics import MetricTask, held_stream

ROOT = Path(__file__).resolve().parents[1]


class StoppedTask(MetricTask):
    """Ctrl-C arrives during ``stop_at``'s step: the run stops after it, with a checkpoint."""

    stop_at = 5

    def step(self, batch, step):
        if step + 1 == self.stop_at:
            # the run's own SIGINT handler, called as the signal would call it: a real
            # raise_signal here crashed the quick suite's process (a segfault in raise(), only
            # after the suite's earlier tests; the subprocess Ctrl-C tests cover real signals)
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        return super().step(batch, step)


def toy_run(root: Path, name: str, steps: int, task: MetricTask | None = None) -> Path:
    run = root / "runs" / name
    images = root / "images"
    if not images.exists():
        write_images(images)
    cfg = config(run, steps, eval_every=3, best_by="mse", sample_every=2)
    Trainer(task or MetricTask(), held_stream(images), cfg).run()
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    toy_run(root, "long", 10)
    toy_run(root, "short", 6)
    with pytest.raises(TrainingInterrupted):
        toy_run(root, "stopped", 12, StoppedTask())
    return root / "runs"


def page_data(text: str) -> dict:
    found = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S
    )
    assert found is not None
    return json.loads(found.group(1))


def test_the_page_carries_every_run_inline_and_asks_the_network_for_nothing(runs, tmp_path, inproc):
    out = tmp_path / "r.html"
    r = inproc(
        "report", str(runs / "long"), str(runs / "short"), "--out", str(out), "--frames", "3"
    )
    assert r.code == 0, r.err
    assert r.out.strip() == str(out)
    text = out.read_text()
    # nothing from elsewhere: no links, no remote scripts, styles, fonts or images
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text)
    assert re.findall(r"https?://[^\s\"'<>]+", text) == ["http://www.w3.org/2000/svg"]
    data = page_data(text)
    long, short = data["runs"]
    assert [x["label"] for x in data["runs"]] == ["long", "short"]
    assert long["color"] != short["color"]
    assert [p[0] for p in long["losses"]["loss"]] == [2, 4, 6, 8, 10]  # log.jsonl's steps
    assert [p[0] for p in long["metrics"]["mse"]] == [3, 6, 9, 10]  # metrics.jsonl's
    # five sample grids (steps 2..10), at most three shown: the first, a middle one, the last
    assert [f["step"] for f in long["frames"]] == [2, 6, 10]
    assert all(f["src"].startswith("data:image/png;base64,") for f in long["frames"])
    assert [f["step"] for f in short["frames"]] == [2, 4, 6]
    best = read_run(runs / "long").best
    assert best is not None and f"mse={best['value']:.4g} (step {best['step']})" in text
    assert str(runs / "long" / "checkpoints" / "best.pt") in text
    assert "time per step" in text and "metric passes" in text


def test_two_runs_of_one_name_are_told_apart_by_path(runs, tmp_path):
    import posterforge

    other = toy_run(tmp_path, "long", 3)
    out = posterforge.report([runs / "long", other], tmp_path / "two.html")
    labels = [x["label"] for x in page_data(out.read_text())["runs"]]
    assert labels == [str(runs / "long"), str(other)]


def test_bad_input_is_one_line_and_an_existing_page_is_kept(runs, tmp_path, inproc):
    not_a_run = tmp_path / "photos"
    not_a_run.mkdir()
    r = inproc("report", str(not_a_run), "--out", str(tmp_path / "x.html"))
    assert r.code == 2 and r.err.count("\n") == 1 and "not a run folder" in r.err
    assert not (tmp_path / "x.html").exists()
    out = tmp_path / "kept.html"
    out.write_text("mine")
    r = inproc("report", str(runs / "short"), "--out", str(out))
    assert r.code == 2 and r.err.count("\n") == 1 and "pass --overwrite" in r.err
    assert out.read_text() == "mine"
    r = inproc("report", str(runs / "short"), "--out", str(out), "--overwrite")
    assert r.code == 0, r.err
    assert out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(PosterforgeError, match="no such folder"):
        read_run(tmp_path / "gone")


def test_time_per_step_leaves_the_metric_passes_out():
    info = RunInfo(Path("r"), "", "", 6, 6, "finished", None, None)
    info.log = [{"step": 2, "time": 100.0}, {"step": 4, "time": 108.0}, {"step": 6, "time": 110.0}]
    info.metrics = [{"step": 3, "seconds": 5.0, "values": {}}]
    assert step_times(info) == [(4, 1.5), (6, 1.0)]  # (8 s - 5 s of metrics) / 2 steps


def test_a_long_curve_is_thinned_to_about_the_limit_with_its_last_point():
    from posterforge.run_report import pick, thin

    points = [[s, float(s)] for s in range(1, 10_001)]
    kept = thin(points, 2000)
    assert 2000 <= len(kept) <= 2001 and kept[0] == [1, 1.0] and kept[-1] == [10_000, 10_000.0]
    assert pick(5, 3) == [0, 2, 4] and pick(5, 1) == [4] and pick(2, 40) == [0, 1]


def _hold_lock(run: Path) -> subprocess.Popen:
    """Another process that holds the run's training lock, as a training does."""
    code = (
        "import sys; from pathlib import Path; from posterforge.atomic import claim; "
        f"held = claim(Path({str(run)!r}) / 'training'); print(held is not None, flush=True); "
        "sys.stdin.read()"
    )
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None and p.stdout.readline().strip() == "True"
    return p


def test_runs_tells_finished_interrupted_and_running_apart(runs, inproc):
    holder = _hold_lock(runs / "short")
    try:
        r = inproc("runs", str(runs.parent), "--json")
    finally:
        holder.communicate("")
    assert r.code == 0, r.err
    found = {x["name"]: x for x in json.loads(r.out)}
    assert sorted(found) == ["long", "short", "stopped"]  # the images folder is no run
    assert found["long"]["status"] == "finished" and found["short"]["status"] == "running"
    stopped = found["stopped"]
    assert stopped["status"] == "interrupted" and (stopped["step"], stopped["max_steps"]) == (5, 12)
    assert stopped["last_checkpoint"].endswith("step-00000005.pt")
    assert found["long"]["best"]["name"] == "mse" and found["long"]["latest_metrics"]["step"] == 10
    r = inproc("runs", str(runs))  # the lock is gone with its holder
    assert r.code == 0, r.err
    rows = {line.split()[1]: line for line in r.out.splitlines() if line.startswith("│")}
    assert "10/10" in rows["long"] and "finished" in rows["long"]
    assert "finished" in rows["short"] and "interrupted" in rows["stopped"]
    assert "step-00000005.pt" in rows["stopped"] and "mse=" in rows["long"]


def test_runs_of_a_missing_folder_is_one_line(tmp_path, inproc):
    r = inproc("runs", str(tmp_path / "nowhere"))
    assert r.code == 2 and r.err.strip().endswith("no such folder")


def test_a_run_whose_files_are_torn_is_skipped_with_its_reason(tmp_path, inproc):
    broken = tmp_path / "runs" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text('{"max_steps": 1')
    r = inproc("runs", str(tmp_path), "--json")
    assert r.code == 0 and json.loads(r.out) == []
    assert r.err.startswith("posterforge: skipped: ")
    assert "config.json: not readable as JSON" in r.err
    r = inproc("report", str(broken), "--out", str(tmp_path / "b.html"))
    assert r.code == 2 and "config.json: not readable as JSON" in r.err
    assert not (tmp_path / "b.html").exists()
