"""The generic training harness, driven by a tiny toy task: loss, exact resume, kill -9, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from posterforge.errors import PosterforgeError
from posterforge.images import encode_atomic
from posterforge.training.augment import make_augment
from posterforge.training.data import ImageFolderStream
from posterforge.training.harness import TrainConfig, Trainer, list_checkpoints
from posterforge.training.task import TrainingTask

ROOT = Path(__file__).resolve().parent.parent


class ToyTask:
    """Learns to invert colours, on randomly cropped and flipped 12x12 patches."""

    def __init__(self, *, ddp: bool = False, sleep: float = 0.0, device: str = "cpu"):
        torch.manual_seed(1234)  # the same initial weights everywhere, whatever was drawn before
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)
        ).to(device)
        self.model: nn.Module = self.net
        if ddp:
            self.model = nn.parallel.DistributedDataParallel(self.net)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-2)
        self.augment = make_augment(12)
        self.sleep = sleep

    def step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        x = self.augment(batch)
        loss = nn.functional.mse_loss(self.model(x), 1.0 - x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.sleep:
            time.sleep(self.sleep)
        return {"loss": loss.item(), "lr": self.opt.param_groups[0]["lr"]}

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])

    def sample_grid(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.net(batch).clamp(0, 1)
        return torch.cat([torch.cat(list(batch), 2), torch.cat(list(out), 2)], 1)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return dict(self.net.state_dict()), {"format": 1, "kind": "translator", "arch": "toy"}


def write_images(folder: Path, n: int = 10, size: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.integers(0, 256, size=(1, 1, 3))
        noise = rng.integers(-40, 40, size=(size, size + 4 * (i % 3), 3))
        rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
        encode_atomic(rgb, folder / f"img{i:02d}.png")
    return folder


@pytest.fixture
def images(tmp_path) -> Path:
    return write_images(tmp_path / "images")


def stream(images: Path, **kw: Any) -> ImageFolderStream:
    return ImageFolderStream(images, batch_size=4, load_size=16, seed=0, workers=1, **kw)


def config(run_dir: Path, max_steps: int, **kw: Any) -> TrainConfig:
    base = dict(checkpoint_every=3, sample_every=4, log_every=2, keep_checkpoints=2)
    return TrainConfig(run_dir, max_steps, **{**base, **kw})


def all_state(task: ToyTask) -> list[torch.Tensor]:
    tensors = list(task.net.state_dict().values())
    for s in task.opt.state_dict()["state"].values():
        tensors += [v if isinstance(v, torch.Tensor) else torch.tensor(v) for v in s.values()]
    return tensors


def log_steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_toy_task_is_a_training_task():
    assert isinstance(ToyTask(), TrainingTask)


def test_loss_goes_down(tmp_path, images):
    run = tmp_path / "run"
    cfg = TrainConfig(run, 50, log_every=5, checkpoint_every=50, sample_every=25)
    assert Trainer(ToyTask(), stream(images), cfg).run() == 50
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 10
    assert losses[-1] < 0.5 * losses[0]
    assert (run / "samples" / "step-00000025.png").exists()
    assert (run / "model.safetensors").exists()
    assert json.loads((run / "config.json").read_text())["max_steps"] == 50


def test_resume_is_exact_and_log_not_duplicated(tmp_path, images):
    whole = ToyTask()
    Trainer(whole, stream(images), config(tmp_path / "a", 12)).run()

    first = ToyTask()
    Trainer(first, stream(images), config(tmp_path / "b", 6)).run()
    # a fresh process would start with fresh RNGs: make sure nothing leaks through globals
    torch.manual_seed(999)
    np.random.seed(999)
    second = ToyTask()
    trainer = Trainer.resume(tmp_path / "b", second, stream(images), max_steps=12)
    assert trainer.run() == 12

    for x, y in zip(all_state(whole), all_state(second), strict=True):
        assert torch.equal(x, y)
    assert log_steps(tmp_path / "a") == [2, 4, 6, 8, 10, 12]
    assert log_steps(tmp_path / "b") == [2, 4, 6, 8, 10, 12]
    a = [json.loads(line)["loss"] for line in (tmp_path / "a/log.jsonl").read_text().splitlines()]
    b = [json.loads(line)["loss"] for line in (tmp_path / "b/log.jsonl").read_text().splitlines()]
    assert a == b
    assert (tmp_path / "a/samples/step-00000008.png").read_bytes() == (
        tmp_path / "b/samples/step-00000008.png"
    ).read_bytes()


def test_checkpoints_are_safe_to_load_and_pruned(tmp_path, images):
    run = tmp_path / "run"
    Trainer(ToyTask(), stream(images), config(run, 12)).run()
    found = list_checkpoints(run)
    assert [s for s, _ in found] == [9, 12]
    for step, path in found:
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["step"] == step
        assert set(ckpt) >= {"task", "data", "rng", "config"}
        assert set(ckpt["rng"]) >= {"torch", "numpy", "random"}
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-00000004.png",
        "step-00000008.png",
        "step-00000012.png",
    ]


def test_resume_skips_a_corrupt_checkpoint(tmp_path, images):
    whole = ToyTask()
    Trainer(whole, stream(images), config(tmp_path / "a", 12)).run()
    first = ToyTask()
    Trainer(first, stream(images), config(tmp_path / "b", 9, checkpoint_every=3)).run()
    (tmp_path / "b/checkpoints/step-00000009.pt").write_bytes(b"torn")
    second = ToyTask()
    Trainer.resume(tmp_path / "b", second, stream(images), max_steps=12).run()
    for x, y in zip(all_state(whole), all_state(second), strict=True):
        assert torch.equal(x, y)
    assert log_steps(tmp_path / "b") == [2, 4, 6, 8, 10, 12]


def test_new_run_refuses_a_folder_with_checkpoints(tmp_path, images):
    Trainer(ToyTask(), stream(images), config(tmp_path / "run", 3)).run()
    with pytest.raises(PosterforgeError, match="already holds checkpoints"):
        Trainer(ToyTask(), stream(images), config(tmp_path / "run", 6)).run()


SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from posterforge.training import distributed
from posterforge.training.data import ImageFolderStream
from posterforge.training.harness import TrainConfig, Trainer
from tests.test_training_harness import ToyTask

mode, images, run_dir, out, max_steps = sys.argv[1:]
rank, world, device = distributed.init_from_env()
task = ToyTask(ddp=world > 1, sleep=float(os.environ.get("PF_TOY_SLEEP", "0")))
data = ImageFolderStream(images, 2, 16, seed=0, rank=rank, world_size=world, workers=1)
if mode == "resume":
    trainer = Trainer.resume(run_dir, task, data)
else:
    cfg = TrainConfig(run_dir, int(max_steps), checkpoint_every=4, sample_every=5, log_every=2)
    trainer = Trainer(task, data, cfg)
trainer.run()
torch.save(task.state_dict(), f"{{out}}.rank{{rank}}.pt")
distributed.cleanup()
"""


def script(tmp_path: Path) -> Path:
    path = tmp_path / "train_toy.py"
    path.write_text(SCRIPT.format(root=str(ROOT)))
    return path


def same_state(a: Path, b: Path) -> bool:
    x = torch.load(a, weights_only=True)
    y = torch.load(b, weights_only=True)
    tx = list(x["net"].values()) + [t for s in x["opt"]["state"].values() for t in s.values()]
    ty = list(y["net"].values()) + [t for s in y["opt"]["state"].values() for t in s.values()]
    return len(tx) == len(ty) and all(
        torch.equal(torch.as_tensor(p), torch.as_tensor(q)) for p, q in zip(tx, ty, strict=True)
    )


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted_run(tmp_path, images):
    path = script(tmp_path)
    env = {**os.environ, "PF_TOY_SLEEP": "0.1", "PYTHONPATH": str(ROOT)}
    killed_run = tmp_path / "killed"
    victim = subprocess.Popen(
        [sys.executable, path, "new", images, killed_run, tmp_path / "killed-out", "20"],
        env=env,
    )
    whole = subprocess.Popen(
        [sys.executable, path, "new", images, tmp_path / "whole", tmp_path / "whole-out", "20"],
        env={**env, "PF_TOY_SLEEP": "0"},
    )
    try:
        deadline = time.monotonic() + 60
        while not (killed_run / "checkpoints" / "step-00000004.pt").exists():
            assert victim.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_run / "model.safetensors").exists()

    env["PF_TOY_SLEEP"] = "0"
    resumed = subprocess.run(
        [sys.executable, path, "resume", images, killed_run, tmp_path / "killed-out", "20"],
        env=env,
        timeout=60,
    )
    assert resumed.returncode == 0
    assert whole.wait(timeout=60) == 0
    assert same_state(tmp_path / "whole-out.rank0.pt", tmp_path / "killed-out.rank0.pt")
    assert log_steps(killed_run) == list(range(2, 21, 2))
    assert (killed_run / "model.safetensors").exists()


@pytest.mark.slow
def test_ddp_two_ranks_on_gloo(tmp_path, images):
    path = script(tmp_path)
    run = tmp_path / "ddp"
    out = tmp_path / "ddp-out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = subprocess.run(
        [*cmd, path, "new", images, run, out, "8"],
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_state(Path(f"{out}.rank0.pt"), Path(f"{out}.rank1.pt"))
    assert [s for s, _ in list_checkpoints(run)] == [4, 8]
    ckpt = torch.load(run / "checkpoints" / "step-00000008.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["ranks"]) == 2
    assert not list(run.glob("**/*.tmp"))
    assert log_steps(run) == [2, 4, 6, 8]


def test_progress_on_stderr_a_bar_on_a_terminal_plain_lines_elsewhere(
    tmp_path, images, monkeypatch, capsys
):
    Trainer(ToyTask(), stream(images), config(tmp_path / "log", 2)).run()
    out, err = capsys.readouterr()
    assert out == ""  # stdout belongs to the command's result
    lines = err.splitlines()  # no terminal (nohup, a log file): plain periodic lines
    assert lines and lines[0].startswith("train: step ") and "loss=" in lines[-1]
    assert "\r" not in err and "2/2" in lines[-1]
    from posterforge.cli.output import train_progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    progress = train_progress()  # what the CLI gives the harness: the bar on a terminal
    Trainer(ToyTask(), stream(images), config(tmp_path / "tty", 2), progress=progress).run()
    out, err = capsys.readouterr()
    assert out == "" and "\r" in err and "2/2" in err and "loss=" in err


class Recorder:
    """A TrainProgress that keeps what the harness told it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def start(self, step: int, total: int) -> None:
        self.calls.append(("start", step, total))

    def on_step(self, step: int, total: int, logs: Any) -> None:
        self.calls.append(("step", step, total, None if logs is None else sorted(logs)))

    def notify(self, line: str) -> None:
        self.calls.append(("note", line))

    def close(self) -> None:
        self.calls.append(("close",))


def test_the_harness_reports_only_through_the_progress_it_is_given(tmp_path, images, capsys):
    rec = Recorder()
    Trainer(ToyTask(), stream(images), config(tmp_path / "run", 4), progress=rec).run()
    logged = ["loss", "lr"]
    assert rec.calls == [
        ("start", 0, 4),
        ("step", 1, 4, logged),  # the first step is shown at once
        ("step", 2, 4, logged),
        ("step", 3, 4, None),
        ("step", 4, 4, logged),
        ("close",),
    ]
    rec = Recorder()
    Trainer.resume(tmp_path / "run", ToyTask(), stream(images), progress=rec, max_steps=5).run()
    note = ("note", f"posterforge: resuming {tmp_path / 'run'} at step 4 of 5")
    assert rec.calls == [note, ("start", 4, 5), ("step", 5, 5, logged), ("close",)]
    assert "train:" not in capsys.readouterr().err  # no line of its own besides the progress's
