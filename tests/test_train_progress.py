"""What a person watching a training run sees: the first step at once with its time, a line at
every logged step off a terminal, and a bar on one that counts steps with an ETA that leaves the
start-up out."""

from __future__ import annotations

import io
import json
import re

from posterforge.cli import output
from posterforge.cli.output import TrainBar
from posterforge.training.harness import TrainConfig, Trainer
from posterforge.training.progress import PlainProgress
from tests.test_training_harness import ToyTask, stream, write_images

LINE = re.compile(r"train: step (\d+)/(\d+) \((.*?)\) loss=")


def _lines(text: str) -> list[tuple[int, str]]:
    return [(int(m[1]), m[3]) for m in LINE.finditer(text)]


def test_off_a_terminal_the_first_step_then_every_logged_step_prints(tmp_path):
    images = write_images(tmp_path / "images")
    err = io.StringIO()
    cfg = TrainConfig(tmp_path / "run", 20, log_every=5, checkpoint_every=12, sample_every=100)
    Trainer(ToyTask(), stream(images), cfg, progress=PlainProgress(stream=err)).run()
    lines = _lines(err.getvalue())
    assert [s for s, _ in lines] == [1, 5, 10, 15, 20]
    assert re.fullmatch(r"first step \d+\.\d\d s, with start-up", lines[0][1])
    for _, timing in lines[1:]:
        assert re.fullmatch(r"\d+\.\d\d steps/s, ETA \d+\.\d min", timing)
    # log.jsonl keeps every log_every: the first step is shown, not logged
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 4

    err = io.StringIO()  # a resumed session shows its own first step at once too
    cfg = TrainConfig(tmp_path / "run", 30, log_every=5, checkpoint_every=12, sample_every=100)
    Trainer(ToyTask(), stream(images), cfg, resume=True, progress=PlainProgress(stream=err)).run()
    assert [s for s, _ in _lines(err.getvalue())] == [21, 25, 30]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_counts_steps_and_its_eta_leaves_the_first_step_out(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(output.time, "monotonic", clock)
    err = io.StringIO()
    bar = TrainBar(stream=err)
    bar.start(0, 100)
    clock.now += 60.0  # a first step of a minute: the start-up
    bar.on_step(1, 100, {"loss": 0.5})
    text = bar.bar.text(120)
    assert "step 1/100" in text and "steps/s" in text and "img" not in text
    assert "ETA --:--" in text  # no rate yet: the first minute says nothing of the rest
    clock.now += 2.0  # then 2 s a step
    bar.on_step(2, 100, None)
    text = bar.bar.text(120)
    assert "step 2/100 0.50 steps/s ETA 3:16" in text  # 98 steps at 2 s, not at 31 s


class _Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, step: int, total: int) -> None: ...

    def on_step(self, step: int, total: int, logs: object) -> None: ...

    def notify(self, line: str) -> None:
        self.lines.append(line)

    def close(self) -> None: ...


def test_resume_says_where_it_picks_up_or_why_it_starts_over(tmp_path):
    images = write_images(tmp_path / "images")
    run = tmp_path / "run"
    cfg = TrainConfig(run, 6, log_every=5, checkpoint_every=4, sample_every=100)
    Trainer(ToyTask(), stream(images), cfg, progress=_Notes()).run()
    notes = _Notes()
    Trainer.resume(run, ToyTask(), stream(images), progress=notes, max_steps=8).run()
    assert notes.lines == [f"posterforge: resuming {run} at step 6 of 8"]

    for ckpt in (run / "checkpoints").iterdir():  # killed before its first checkpoint
        ckpt.unlink()
    notes = _Notes()
    Trainer.resume(run, ToyTask(), stream(images), progress=notes, max_steps=2).run()
    assert notes.lines == [
        f"posterforge: {run} has no checkpoint yet (it stopped before its first, due at step "
        "4): starting from step 0"
    ]


def test_resuming_a_finished_run_says_there_is_nothing_to_do(tmp_path, pf_home):
    """No task is built and nothing is stored again: the exported model says it is done (a
    checkpoint's name alone is no proof: see test_faults_training's planted checkpoint)."""
    from posterforge.training import run

    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "step-00000006.pt").write_bytes(b"")
    from posterforge.weights import make_header, save_weights  # the exported model says step 6

    header = make_header("translator", "cyclegan-resnet", {}, provenance={"steps": 6})
    save_weights(folder / "model.safetensors", {}, header)
    recipe = {"model": {}, "train": {"max_steps": 6}}
    request = {"kind": "translator", "arch": "cyclegan", "name": "done", "recipe": recipe}
    (folder / "request.json").write_text(json.dumps(request))
    notes = _Notes()
    assert run.resume(folder, progress=notes) is None
    assert notes.lines == [
        f"posterforge: {folder} finished at step 6 of 6: nothing to do (pass --max-steps above 6 "
        "to train it further)"
    ]
    assert not (pf_home / "weights").exists() or not list((pf_home / "weights").iterdir())
