"""The generic training loop: seeds, data, steps, logs, sample grids, checkpoints, exact resume.

Run folder::

    RUN/config.json                       the TrainConfig
    RUN/log.jsonl                         {"step", "time", <losses>...} every log_every steps
    RUN/samples/step-00000100.png         task.sample_grid(fixed batch) every sample_every steps
    RUN/checkpoints/step-00000100.pt      the last keep_checkpoints checkpoints
    RUN/model.safetensors                 task.export() once max_steps is reached
    RUN/metrics.jsonl                     task.metrics(held-out data) every eval_every steps
    RUN/checkpoints/best.pt               the task state of the best step by best_by
    RUN/events.out.tfevents.*             TensorBoard: logged scalars, sample grids, metrics

A checkpoint holds the step, the task's and the data stream's state, every RNG state (of every
rank under DDP) and the config. It is written atomically and read with ``weights_only=True``
only, so a resumed run continues bit for bit as if it had never stopped. Only rank 0 writes files.
Progress goes to a :class:`~posterforge.training.progress.TrainProgress` (plain lines on stderr
unless the caller brings another); the checkpoint files are :mod:`.checkpoints`', the RNG states
:mod:`.rng`'s and the stop signals :mod:`.stopping`'s.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from posterforge.atomic import remove_stale, write_text_atomic
from posterforge.errors import PosterforgeError
from posterforge.training import distributed
from posterforge.training.checkpoints import (
    checkpoint_path,
    last_step,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from posterforge.training.monitor import (
    Events,
    append_metrics,
    best_path,
    check_metrics,
    new_best,
)
from posterforge.training.progress import PlainProgress, TrainProgress
from posterforge.training.rng import get_rng_state, seed_everything, set_rng_state
from posterforge.training.stopping import StopAfterStep, TrainingInterrupted
from posterforge.training.task import TrainingTask, scalars

log = logging.getLogger(__name__)


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
    eval_every: int = 0  # task.metrics() on the held-out data every so many steps (0: never)
    best_by: str = ""  # the metric whose best step is kept in checkpoints/best.pt ("": none)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.max_steps < 0:
            raise ValueError("max_steps must not be negative")
        for name in ("checkpoint_every", "sample_every", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.eval_every < 0:
            raise ValueError("eval_every must not be negative")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


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
        progress: TrainProgress | None = None,
    ):
        self.task = task
        self.progress = progress if progress is not None else PlainProgress()
        self.data = data
        self.config = config
        self.resume_requested = resume
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()
        self.device = torch.device(config.device)
        self.step = self._session_start = 0
        self.sample_batch: Any = None
        self._sample_data_state: dict[str, Any] | None = None
        self.held_out: Any = None
        self.best: dict[str, Any] | None = None  # {"step", "value"} of best_by, kept in checkpoints
        self.events: Events | None = None

    @classmethod
    def resume(
        cls,
        run_dir: str | os.PathLike[str],
        task: TrainingTask,
        data: BatchStream,
        *,
        progress: TrainProgress | None = None,
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
        return cls(task, data, TrainConfig.from_dict(saved), resume=True, progress=progress)

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
        say = self.progress.notify if self.is_main else None  # which checkpoints were skipped
        found = latest_checkpoint(self.run_dir, say) if self.resume_requested else None
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
                (self.run_dir / "metrics.jsonl").write_text("")
                best_path(self.run_dir).unlink(missing_ok=True)  # of a run that starts over
                if self.resume_requested:  # say why a resume starts over
                    self.progress.notify(
                        f"posterforge: {self.run_dir} has no checkpoint yet (it stopped before "
                        f"its first, due at step {cfg.checkpoint_every}): starting from step 0"
                    )
        else:
            path, ckpt = found
            log.info("resuming from %s", path)
            self._restore(ckpt)
            if self.is_main:
                _truncate_log(self.run_dir / "log.jsonl", self.step)
                _truncate_log(self.run_dir / "metrics.jsonl", self.step)
                self.progress.notify(
                    f"posterforge: resuming {self.run_dir} at step {self.step} of {cfg.max_steps}"
                )
        if self.is_main:
            self.held_out = _to_device(
                check_metrics(self.task, self.data, cfg.eval_every, cfg.best_by), self.device
            )
            self.events = Events(self.run_dir, self.step if found is not None else None)
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
        self.best = ckpt.get("best")
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
        """Train up to ``config.max_steps``; return the step reached. A stop signal (Ctrl-C,
        SIGTERM, SIGHUP) ends it after the step in progress with a checkpoint of that step and
        :class:`TrainingInterrupted`."""
        cfg = self.config
        self._prepare()
        self._session_start = self.step
        if self.is_main:
            self.progress.start(self.step, cfg.max_steps)
        stop = StopAfterStep(enabled=self.world_size == 1)
        try:
            while self.step < cfg.max_steps:
                if stop.signum is not None:  # save where we are, so that nothing is lost
                    if last_step(self.run_dir) != self.step:
                        self._checkpoint(self.step)
                    raise TrainingInterrupted(self.run_dir, self.step, cfg.max_steps, stop.signum)
                self._one_step()
            if self.is_main and cfg.export and cfg.max_steps > 0:
                self._export()
        finally:
            stop.close()
            if self.is_main:
                self.progress.close()
                if self.events is not None:
                    self.events.close()
        distributed.barrier()
        return self.step

    def _one_step(self) -> None:
        cfg = self.config
        batch = _to_device(next(self.data), self.device)
        losses = self.task.step(batch, self.step)
        self.step = done = self.step + 1
        final = done == cfg.max_steps
        logged = None
        periodic = done % cfg.log_every == 0 or final
        # the progress shows this session's first step at once (a person sees the run work);
        # log.jsonl keeps every log_every, the same whether the run was resumed or not
        if periodic or done == self._session_start + 1:
            logged = scalars(losses)  # the only host sync of the loop
            if self.is_main and periodic:
                self._log(done, logged)
        if self.is_main:
            self.progress.on_step(done, cfg.max_steps, logged)
        if done % cfg.sample_every == 0 or final:
            self._sample(done)
        if cfg.eval_every and (done % cfg.eval_every == 0 or final):
            self._metrics(done)
        if done % cfg.checkpoint_every == 0 or final:
            self._checkpoint(done)

    def _log(self, step: int, losses: dict[str, float]) -> None:
        line = json.dumps({"step": step, "time": time.time(), **losses})
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.events is not None:
            self.events.scalars("train", step, losses)

    def _isolated(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` under ``no_grad`` with every RNG state saved and restored: sampling and
        metrics never change what training draws next."""
        rng = get_rng_state()
        cuda = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=cuda), torch.no_grad():
                return fn(*args)
        finally:
            set_rng_state(rng)

    def _metrics(self, step: int) -> None:
        """Rank 0: the task's metrics on the held-out data, to metrics.jsonl, the events and the
        progress; a new best by ``best_by`` is saved as best.pt."""
        if not self.is_main:
            return
        started = time.monotonic()
        values = {k: float(v) for k, v in self._isolated(self.task.metrics, self.held_out).items()}
        seconds = time.monotonic() - started
        append_metrics(self.run_dir, step, seconds, values)
        assert self.events is not None
        self.events.scalars("metrics", step, values)
        self.events.scalars("time", step, {"metric_seconds": seconds})
        report = getattr(self.progress, "on_metrics", None)
        if report is not None:
            report(step, values, seconds)
        best = new_best(self.config.best_by, step, values, self.best)
        if best is not None:
            self.best = best
            state = {"step": step, "task": self.task.state_dict(), "best": best}
            save_checkpoint(state, best_path(self.run_dir))

    def _sample(self, step: int) -> None:
        if not self.is_main:
            return
        from posterforge.images import encode_atomic

        rgb = grid_to_uint8(self._isolated(self.task.sample_grid, self.sample_batch))
        encode_atomic(rgb, self.run_dir / "samples" / f"step-{step:08d}.png")
        if self.events is not None:
            self.events.image("samples", step, rgb)

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
            "best": self.best,
        }
        save_checkpoint(ckpt, checkpoint_path(self.run_dir, step))
        for _s, old in list_checkpoints(self.run_dir)[: -self.config.keep_checkpoints]:
            old.unlink(missing_ok=True)

    def _export(self) -> None:
        from posterforge.weights import save_weights

        tensors, header = self.task.export()
        save_weights(self.run_dir / "model.safetensors", tensors, header)


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


__all__ = [
    "BatchStream",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "get_rng_state",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
]
