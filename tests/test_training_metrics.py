"""Metrics while training: metrics.jsonl at the right steps, RNG isolation, exact resume, the
best checkpoint, TensorBoard events (read by tensorboard's own reader), and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from posterforge.errors import PosterforgeError
from posterforge.training.data import ImageFolderStream
from posterforge.training.harness import Trainer, list_checkpoints
from posterforge.training.monitor import best_path, is_better, read_metrics
from posterforge.training.progress import PlainProgress
from tests.test_training_harness import ToyTask, all_state, config, stream, write_images


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images")


class MetricTask(ToyTask):
    """The toy task with a metric: its error on the held-out batch, and a random draw, so that a
    metric pass that leaked into training's random streams would change the weights."""

    def metrics(self, held_out: torch.Tensor) -> dict[str, Any]:
        err = nn.functional.mse_loss(self.net(held_out), 1.0 - held_out)
        return {"mse": err, "draw": float(torch.rand(()))}


class HeldOutStream(ImageFolderStream):
    def held_out(self) -> torch.Tensor:
        return torch.linspace(0, 1, 2 * 3 * 12 * 12).reshape(2, 3, 12, 12)


def held_stream(images: Path) -> HeldOutStream:
    return HeldOutStream(images, batch_size=4, load_size=16, seed=0, workers=1)


def metric_lines(run: Path) -> list[tuple[int, dict[str, float]]]:
    return [(m["step"], m["values"]) for m in read_metrics(run)]


def test_metrics_at_their_steps_in_the_shape_a_report_reads(tmp_path, images):
    run = tmp_path / "run"
    out = []
    progress = PlainProgress(stream=type("S", (), {"write": out.append, "flush": lambda s: 0})())
    cfg = config(run, 7, eval_every=3)
    Trainer(MetricTask(), held_stream(images), cfg, progress=progress).run()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [3, 6, 7]  # every eval_every and the last step
    for x in lines:
        assert set(x) == {"step", "seconds", "values"}
        assert set(x["values"]) == {"mse", "draw"} and x["seconds"] >= 0
    text = "".join(out)
    assert "train: metrics mse=" in text and "(step 3, metrics " in text
    assert "| mse=" in text  # the periodic line carries the latest metric


def test_the_metric_pass_leaves_training_as_it_was(tmp_path, images):
    plain, metered = ToyTask(), MetricTask()
    Trainer(plain, stream(images), config(tmp_path / "a", 8)).run()
    Trainer(metered, held_stream(images), config(tmp_path / "b", 8, eval_every=2)).run()
    for x, y in zip(all_state(plain), all_state(metered), strict=True):
        assert torch.equal(x, y)
    assert len(metric_lines(tmp_path / "b")) == 4  # the passes ran, and drew random numbers


def test_resumed_metrics_equal_a_straight_runs(tmp_path, images):
    kw = dict(eval_every=2, best_by="mse", checkpoint_every=3)
    Trainer(MetricTask(), held_stream(images), config(tmp_path / "a", 10, **kw)).run()
    Trainer(MetricTask(), held_stream(images), config(tmp_path / "b", 4, **kw)).run()
    # as if killed after the metric pass of step 4, before its checkpoint: that line is redone
    (tmp_path / "b/checkpoints/step-00000004.pt").unlink()
    resumed = MetricTask()
    Trainer.resume(tmp_path / "b", resumed, held_stream(images), max_steps=10).run()
    assert metric_lines(tmp_path / "a") == metric_lines(tmp_path / "b")
    assert [s for s, _ in metric_lines(tmp_path / "b")] == [2, 4, 6, 8, 10]
    best_a = torch.load(best_path(tmp_path / "a"), weights_only=True)
    best_b = torch.load(best_path(tmp_path / "b"), weights_only=True)
    assert best_a["best"] == best_b["best"]


def test_the_best_checkpoint_outlives_rotation(tmp_path, images):
    run = tmp_path / "run"
    cfg = config(run, 12, eval_every=4, best_by="mse", keep_checkpoints=1, checkpoint_every=4)
    task = MetricTask()
    Trainer(task, held_stream(images), cfg).run()
    lines = metric_lines(run)
    want = min(lines, key=lambda x: x[1]["mse"])
    best = torch.load(best_path(run), weights_only=True)
    assert best["step"] == want[0] and best["best"]["value"] == want[1]["mse"]
    assert [s for s, _ in list_checkpoints(run)] == [12]  # the others rotated, best.pt kept
    check = MetricTask()
    check.load_state_dict(best["task"])
    with torch.no_grad():
        got = check.metrics(HeldOutStream.held_out(None))["mse"]  # type: ignore[arg-type]
    assert float(got) == want[1]["mse"]  # the kept state is the one that scored best


def test_tensorboard_events_hold_scalars_samples_and_metrics(tmp_path, images):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    Trainer(MetricTask(), held_stream(images), config(run, 8, eval_every=4)).run()
    events = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "metrics/mse", "metrics/draw"} <= set(tags["scalars"])
    assert "samples" in tags["images"]
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6, 8]
    assert [e.step for e in events.Scalars("metrics/mse")] == [4, 8]
    assert [e.step for e in events.Images("samples")] == [4, 8]


def test_refusals_are_one_line_before_any_step(tmp_path, images):
    with pytest.raises(PosterforgeError, match=r"eval_every = 2: this family declares no metric"):
        Trainer(ToyTask(), held_stream(images), config(tmp_path / "a", 4, eval_every=2)).run()
    with pytest.raises(PosterforgeError, match=r"keeps no held-out images"):
        Trainer(MetricTask(), stream(images), config(tmp_path / "b", 4, eval_every=2)).run()
    with pytest.raises(PosterforgeError, match=r"best_by = 'mse' needs metrics"):
        Trainer(MetricTask(), held_stream(images), config(tmp_path / "c", 4, best_by="mse")).run()
    with pytest.raises(PosterforgeError, match=r"no such metric \(this family has: mse, draw\)"):
        cfg = config(tmp_path / "d", 4, eval_every=2, best_by="fid")
        Trainer(MetricTask(), held_stream(images), cfg).run()
    for run in ("a", "b", "c"):
        assert not list_checkpoints(tmp_path / run)


def test_which_way_is_better():
    assert is_better("fid", 3.0, 4.0) and not is_better("fid", 5.0, 4.0)
    assert is_better("recall", 0.5, 0.4) and not is_better("precision", 0.3, 0.4)
    assert is_better("fid", 9.0, None) and not is_better("fid", float("nan"), None)


def test_the_interrupt_line_names_the_latest_metrics(tmp_path, images):
    from posterforge.cli.train import interrupt_line

    run = tmp_path / "run"
    plain = interrupt_line("translator", run, 3, 10)
    assert plain == (
        f"posterforge: interrupted at step 3 of 10, saved as a checkpoint; continue with: "
        f"posterforge train translator --resume {run}"
    )
    Trainer(MetricTask(), held_stream(images), config(run, 4, eval_every=2)).run()
    last = read_metrics(run)[-1]
    line = interrupt_line("translator", run, 4, 10)
    assert f" (latest metrics: mse={last['values']['mse']:.4g} " in line
    assert "(step 4, metrics " in line and line.endswith(f"--resume {run}")
