"""The generic training loop: seeds, data, steps, logs, sample grids, checkpoints, exact resume.

Run folder::

    RUN/config.json                       the TrainConfig
    RUN/log.jsonl                         {"step", "time", <losses>...} every log_every steps
    RUN/samples/step-00000100.png         task.sample_grid(fixed batch) every sample_every steps
    RUN/checkpoints/step-00000100.pt      the last keep_checkpoints checkpoints
    RUN/model.safetensors                 task.export() once max_steps is reached

A checkpoint holds the step, the task's and the data stream's state, every RNG state (of every
rank under DDP) and the config. It is written atomically and read with ``weights_only=True``
only, so a resumed run continues bit for bit as if it had never stopped. Only rank 0 writes files.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from posterforge.atomic import atomic_write, remove_stale, write_text_atomic
from posterforge.errors import PosterforgeError
from posterforge.training import distributed
from posterforge.training.task import TrainingTask, scalars

log = logging.getLogger(__name__)

_CKPT_RE = re.compile(r"^step-(\d{8,})\.pt$")


class BatchStream(Protocol):
    """What the harness needs from a data source (``ImageFolderStream`` is one)."""

    def __next__(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainConfig:
    run_dir: Path
    max_steps: int
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 100
    log_every: int = 10
    keep_checkpoints: int = 3
    device: str = "cpu"
    export: bool = True  # write RUN/model.safetensors from task.export() when max_steps is reached

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.max_steps < 0:
            raise ValueError("max_steps must not be negative")
        for name in ("checkpoint_every", "sample_every", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# -- RNG state as plain data (weights_only-loadable) --------------------------------------------


def get_rng_state() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy's global and Python's ``random`` states."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(np_state[0]),
            "key": [int(k) for k in np_state[1]],
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "random": [int(py_version), [int(x) for x in py_internal], py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (
            n["bit_generator"],
            np.asarray(n["key"], dtype=np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # all CUDA devices too


# -- files ---------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, rename: whole or not at all."""
    with atomic_write(path) as f:
        torch.save(obj, f)
    _fsync_dir(path.parent)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no arbitrary unpickling)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; unreadable ones are skipped with a warning."""
    for _step, path in reversed(list_checkpoints(run_dir)):
        try:
            ckpt = load_checkpoint(path)
            if not isinstance(ckpt, dict) or "step" not in ckpt:
                raise ValueError("not a training checkpoint")
            return path, ckpt
        except Exception as e:
            log.warning("skipping unreadable checkpoint %s: %s", path, e)
    return None


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def grid_to_uint8(grid: torch.Tensor) -> np.ndarray:
    """A ``(3, H, W)`` tensor in ``[0, 1]`` to a ``(H, W, 3)`` uint8 array."""
    if grid.ndim != 3 or grid.shape[0] != 3:
        raise ValueError(f"sample_grid must return a (3, H, W) tensor, not {tuple(grid.shape)}")
    g = grid.detach().float().cpu().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return g.permute(1, 2, 0).contiguous().numpy()


# -- the loop ------------------------------------------------------------------------------------


class Trainer:
    """Drives a :class:`TrainingTask` over a batch stream for ``config.max_steps`` steps.

    ``Trainer(task, data, config)`` starts a new run (refusing a run folder that already has
    checkpoints); ``Trainer(..., resume=True)`` or :meth:`Trainer.resume` continues from the newest
    readable checkpoint, or starts from scratch when there is none. Under ``torchrun`` call
    :func:`posterforge.training.distributed.init_from_env` first and give each rank its shard of
    the data; ranks are seeded with ``seed + rank``.
    """

    def __init__(
        self,
        task: TrainingTask,
        data: BatchStream,
        config: TrainConfig,
        *,
        resume: bool = False,
    ):
        self.task = task
        self.data = data
        self.config = config
        self.resume_requested = resume
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()
        self.device = torch.device(config.device)
        self.step = 0
        self.sample_batch: Any = None
        self._sample_data_state: dict[str, Any] | None = None

    @classmethod
    def resume(
        cls,
        run_dir: str | os.PathLike[str],
        task: TrainingTask,
        data: BatchStream,
        **overrides: Any,
    ) -> Trainer:
        """A trainer for the run in ``run_dir``, configured by its ``config.json`` (``overrides``,
        e.g. ``max_steps=...``, replace fields), that continues from the newest checkpoint."""
        path = Path(run_dir) / "config.json"
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise PosterforgeError(f"cannot resume {run_dir}: no readable config.json ({e})") from e
        saved.update(overrides)
        saved["run_dir"] = str(run_dir)
        return cls(task, data, TrainConfig.from_dict(saved), resume=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    # -- set-up ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        cfg = self.config
        if self.is_main:
            for sub in ("checkpoints", "samples"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            # temp files of a killed run (checkpoint, exported model, log): dead writers only
            for folder in (self.run_dir, self.run_dir / "checkpoints", self.run_dir / "samples"):
                remove_stale(folder)
        found = latest_checkpoint(self.run_dir) if self.resume_requested else None
        if not self.resume_requested and list_checkpoints(self.run_dir):
            raise PosterforgeError(
                f"{self.run_dir} already holds checkpoints: resume it or choose a new run folder"
            )
        if self.is_main:
            _write_json_atomic(self.run_dir / "config.json", cfg.to_dict())
        seed_everything(cfg.seed + self.rank)
        if found is None:
            self.step = 0
            self._sample_data_state = self.data.state_dict()
            if self.is_main:
                (self.run_dir / "log.jsonl").write_text("")
        else:
            path, ckpt = found
            log.info("resuming from %s", path)
            self._restore(ckpt)
            if self.is_main:
                _truncate_log(self.run_dir / "log.jsonl", self.step)
        if self.is_main:
            # the fixed sample batch: the run's first batch, drawn without disturbing the stream
            now = self.data.state_dict()
            self.data.load_state_dict(self._sample_data_state)
            self.sample_batch = _to_device(next(self.data), self.device)
            self.data.load_state_dict(now)
        distributed.barrier()

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.step = int(ckpt["step"])
        self.task.load_state_dict(ckpt["task"])
        self._sample_data_state = ckpt["sample_data"]
        ranks = ckpt.get("ranks")
        if self.world_size > 1:
            if not ranks or len(ranks) != self.world_size:
                raise PosterforgeError(
                    f"checkpoint was written by {len(ranks or [1])} ranks, not {self.world_size}"
                )
            mine = ranks[self.rank]
        else:
            if ranks and len(ranks) != 1:
                raise PosterforgeError(f"checkpoint was written by {len(ranks)} ranks, not 1")
            mine = {"data": ckpt["data"], "rng": ckpt["rng"]}
        self.data.load_state_dict(mine["data"])
        set_rng_state(mine["rng"])

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> int:
        """Train up to ``config.max_steps``; return the step reached."""
        cfg = self.config
        self._prepare()
        progress = _Progress(cfg.max_steps, self.step) if self.is_main else None
        stop = _StopAfterStep(enabled=self.world_size == 1)
        try:
            while self.step < cfg.max_steps:
                if stop.requested:  # Ctrl-C: save where we are, so that nothing is lost
                    if _last_step(self.run_dir) != self.step:
                        self._checkpoint(self.step)
                    raise TrainingInterrupted(self.run_dir, self.step, cfg.max_steps)
                batch = _to_device(next(self.data), self.device)
                losses = self.task.step(batch, self.step)
                self.step += 1
                done = self.step
                final = done == cfg.max_steps
                logged = None
                if done % cfg.log_every == 0 or final:
                    logged = scalars(losses)  # the only host sync of the loop
                    if self.is_main:
                        self._log(done, logged)
                if progress is not None:
                    progress.update(done, logged)
                if done % cfg.sample_every == 0 or final:
                    self._sample(done)
                if done % cfg.checkpoint_every == 0 or final:
                    self._checkpoint(done)
            if self.is_main and cfg.export and cfg.max_steps > 0:
                self._export()
        finally:
            stop.close()
            if progress is not None:
                progress.close()
        distributed.barrier()
        return self.step

    def _log(self, step: int, losses: dict[str, float]) -> None:
        line = json.dumps({"step": step, "time": time.time(), **losses})
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def _sample(self, step: int) -> None:
        if not self.is_main:
            return
        from posterforge.images import encode_atomic

        # sampling must not change what training draws next: keep every RNG as it was
        rng = get_rng_state()
        cuda = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=cuda), torch.no_grad():
                grid = self.task.sample_grid(self.sample_batch)
        finally:
            set_rng_state(rng)
        path = self.run_dir / "samples" / f"step-{step:08d}.png"
        encode_atomic(grid_to_uint8(grid), path)

    def _checkpoint(self, step: int) -> None:
        mine = {"data": self.data.state_dict(), "rng": get_rng_state()}
        ranks = [mine]
        if self.world_size > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, mine)
            ranks = gathered
        if not self.is_main:
            return
        ckpt = {
            "step": step,
            "task": self.task.state_dict(),
            "data": mine["data"],
            "rng": mine["rng"],
            "ranks": ranks,
            "sample_data": self._sample_data_state,
            "config": self.config.to_dict(),
            "world_size": self.world_size,
        }
        save_checkpoint(ckpt, self.run_dir / "checkpoints" / f"step-{step:08d}.pt")
        for _s, old in list_checkpoints(self.run_dir)[: -self.config.keep_checkpoints]:
            old.unlink(missing_ok=True)

    def _export(self) -> None:
        from posterforge.weights import save_weights

        tensors, header = self.task.export()
        save_weights(self.run_dir / "model.safetensors", tensors, header)


class TrainingInterrupted(Exception):
    """Ctrl-C stopped a run after a step; a checkpoint of that step is on disk."""

    def __init__(self, run_dir: Path, step: int, max_steps: int):
        super().__init__(f"interrupted at step {step} of {max_steps}")
        self.run_dir, self.step, self.max_steps = run_dir, step, max_steps


class _StopAfterStep:
    """The first Ctrl-C asks the loop to stop after the step in progress (a step cut in half
    could not be checkpointed); a second one stops at once. Off under DDP, where every rank would
    have to agree on the step, and outside the main thread."""

    def __init__(self, enabled: bool = True):
        self.requested = False
        self.previous: Any = None
        if enabled and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def close(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def _last_step(run_dir: Path) -> int | None:
    found = list_checkpoints(run_dir)
    return found[-1][0] if found else None


def _write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log lines up to ``step``: what came after the checkpoint will be logged again."""
    if not path.exists():
        path.write_text("")
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a kill
    write_text_atomic(path, "".join(kept))


class _Progress:
    """Training progress on stderr, never stdout: a one-line bar with the latest losses on a
    terminal; elsewhere (nohup, a log file) a plain line per logged step, at most one every
    ``every_s`` seconds, with the step, rate, ETA and losses."""

    def __init__(self, total: int, start: int, every_s: float = 30.0):
        self.total, self.start_step = total, start
        self.start, self.every_s, self.last = time.monotonic(), every_s, -float("inf")
        self._bar: Any = None
        self._losses = ""
        if sys.stderr.isatty():
            from posterforge.cli.output import ProgressLine

            self._bar = ProgressLine("train", total)
            self._bar.done = start

    def update(self, step: int, losses: dict[str, float] | None) -> None:
        if losses is not None:
            self._losses = " ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
        if self._bar is not None:
            self._bar.label = f"train {self._losses}".rstrip()
            self._bar.advance(step - self._bar.done)
            return
        now = time.monotonic()
        if losses is None or (now - self.last < self.every_s and step < self.total):
            return
        self.last = now
        rate = (step - self.start_step) / max(now - self.start, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        eta_text = f"{eta / 60:.1f} min" if eta != float("inf") else "?"
        print(
            f"train: step {step}/{self.total} ({rate:.2f} steps/s, ETA {eta_text}) {self._losses}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.clear()
            print(f"train: step {self._bar.done}/{self.total} {self._losses}", file=sys.stderr)


__all__ = [
    "BatchStream",
    "TrainConfig",
    "Trainer",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]
