"""``train`` as a Python API: pick the family, merge its recipe, build its task and data, run the
harness, and put the result into the weight store under a name (so ``translate --style NAME`` or
``generate --model NAME`` works at once).

The keyword functions (:func:`train`, :func:`resume`, :func:`export`) make a job
(:mod:`posterforge.jobs.train`, checked once) and run it in a :class:`~posterforge.context.Context`
(the default one when none is given); :func:`start`, :func:`continue_run` and :func:`export_run`
run a job already made. A run folder also holds ``request.json`` (what was asked: family, inputs,
merged recipe, name, ``--init-from``, and the data summary), so that ``resume(run_dir)`` needs
nothing else, also after ``kill -9``, and ``export(run_dir)`` needs neither the data nor the
command line.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import write_text_atomic
from posterforge.errors import PosterforgeError
from posterforge.jobs.train import (
    HARNESS_KEYS,
    ExportJob,
    ResumeJob,
    TrainJob,
    TrainOptions,
    family_for,
    load_recipe,
    parse_overrides,
    read_request,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Unpack

    from posterforge.context import Context
    from posterforge.family import Family
    from posterforge.store import Store
    from posterforge.training.progress import TrainProgress
    from posterforge.weights import Weights

__all__ = [
    "HARNESS_KEYS",
    "continue_run",
    "export",
    "export_run",
    "family_for",
    "load_recipe",
    "parse_overrides",
    "read_request",
    "resume",
    "start",
    "train",
]


def train(
    kind: str,
    inputs: Mapping[str, str | Path | None],
    name: str,
    run_dir: str | Path,
    *,
    ctx: Context | None = None,
    progress: TrainProgress | None = None,
    **options: Unpack[TrainOptions],
) -> Path | None:
    """Train a new model of ``kind`` ("translator" or "generator") and store it as ``name``.

    ``inputs`` names the family's inputs (``{"a": DIR, "b": DIR}`` for CycleGAN, ``{"data": DIR,
    "labels": FILE}`` for the genre cGAN); ``options`` are :meth:`TrainJob.create`'s keywords:
    ``arch``, ``preset`` (one of its recipes), ``overrides`` (``--set`` items), ``options`` (its
    declared recipe options, ``{"balance": "cap"}``), ``init_from``, ``max_steps``, ``seed``,
    ``device``, ``overwrite``.

    Returns the stored weight file (``None`` on DDP ranks other than 0). Configuration errors
    (unknown family or recipe, name taken, missing input) raise before any training starts.
    """
    from posterforge.context import default_context

    ctx = ctx or default_context()
    return start(TrainJob.create(ctx, kind, inputs, name, run_dir, **options), ctx, progress)


def start(job: TrainJob, ctx: Context, progress: TrainProgress | None = None) -> Path | None:
    """Run a new training job to its end (see :func:`train`)."""
    from posterforge.training.runlock import holding

    with holding(job.run_dir, new=True):  # a second training into this folder is refused
        return _run(job.family, job.request(), job.run_dir, job.device, ctx, progress)


def resume(
    run_dir: str | Path,
    *,
    max_steps: int | None = None,
    device: str = "auto",
    store: Store | None = None,
    ctx: Context | None = None,
    progress: TrainProgress | None = None,
) -> Path | None:
    """Continue the run in ``run_dir`` exactly where its last checkpoint left it (a run killed
    before its first checkpoint starts again as it first did, ``--init-from`` included). A
    finished run has nothing to do unless ``max_steps`` grows: it says so and returns None."""
    from posterforge.context import default_context

    ctx = ctx or default_context(store)
    return continue_run(ResumeJob(Path(run_dir), max_steps, device), ctx, progress)


def _exported_step(run_dir: Path) -> int | None:
    """The step the run's exported model was trained to (its header says), or None: a
    checkpoint's file name is no proof that the run got there (a file may be planted, or broken)."""
    from posterforge.errors import WeightsError
    from posterforge.weights import read_header

    try:
        steps = read_header(run_dir / "model.safetensors").get("provenance", {}).get("steps")
    except WeightsError:
        return None
    return steps if isinstance(steps, int) else None


def continue_run(
    job: ResumeJob, ctx: Context, progress: TrainProgress | None = None
) -> Path | None:
    """Run a resume job (see :func:`resume`); a run that already reached its ``max_steps`` and
    exported its model has nothing to do: it says so and returns None."""
    from posterforge.training.progress import PlainProgress

    done, total = _exported_step(job.run_dir), int(job.request["recipe"]["train"]["max_steps"])
    if done is not None and done >= total:
        (progress or PlainProgress()).notify(
            f"posterforge: {job.run_dir} finished at step {done} of {total}: nothing to do "
            f"(pass --max-steps above {done} to train it further)"
        )
        return None
    request = copy.deepcopy(job.request)
    family = family_for(request["kind"], request["arch"], ctx.host)
    from posterforge.training.runlock import holding

    with holding(job.run_dir, new=False):
        return _run(family, request, job.run_dir, job.device, ctx, progress, resume=True)


def _load_init(spec: str, kind: str, ctx: Context) -> Weights:
    from posterforge.catalog import resolve_weights
    from posterforge.weights import load_weights

    weights = load_weights(resolve_weights(spec, ctx.host, ctx.store))
    if weights.header.get("kind") != kind:
        raise PosterforgeError(
            f"--init-from {spec}: holds a {weights.header.get('kind')}, not a {kind}"
        )
    return weights


def _task(family: Family, request: dict[str, Any], device: str, ctx: Context) -> Any:
    """The family's task for a saved or new request (no data needed)."""
    init = request.get("init_from")
    init_weights = _load_init(init, request["kind"], ctx) if init else None
    try:
        return family.task(
            request["recipe"]["model"],
            device=device,
            seed=int(request["seed"]),
            init_from=init_weights,
            ctx=ctx,
        )
    except ValueError as e:  # the family refuses the recipe or the initial weights
        raise PosterforgeError(f"{family.name}: {e}") from None


def _data(
    family: Family, request: dict[str, Any], rank: int, world_size: int, ctx: Context
) -> Any:
    try:
        return family.data(
            {k: Path(v) for k, v in request["data"].items()},
            request["recipe"]["model"],
            seed=int(request["seed"]),
            rank=rank,
            world_size=world_size,
            ctx=ctx,
        )
    except ValueError as e:
        raise PosterforgeError(f"{family.name}: {e}") from None


def _header(header: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """What the run adds to the family's exported header: the data summary, ``--init-from``."""
    provenance = dict(header.get("provenance", {}))
    if request.get("data_summary"):
        provenance["data"] = request["data_summary"]
    if request.get("init_from") and "init_from" not in provenance:
        provenance["init_from"] = request["init_from"]
    return {**header, "provenance": provenance}


def _run(
    family: Family,
    request: dict[str, Any],
    run_dir: Path,
    device: str,
    ctx: Context,
    progress: TrainProgress | None,
    *,
    resume: bool = False,
) -> Path | None:
    from posterforge.engine import resolve_device
    from posterforge.training import distributed
    from posterforge.training.harness import TrainConfig, Trainer
    from posterforge.training.progress import PlainProgress
    from posterforge.weights import load_weights, save_weights

    progress = progress if progress is not None else PlainProgress()
    rank, world_size, dist_device = distributed.init_from_env()
    dev = str(dist_device if world_size > 1 else resolve_device(device))
    harness = {k: v for k, v in request["recipe"]["train"].items() if k in HARNESS_KEYS}
    stream = _data(family, request, rank, world_size, ctx)
    try:
        updates = getattr(stream, "recipe_updates", None)
        if updates is not None:  # what the data decided (label names), for the task and resume
            request["recipe"]["model"].update(updates())
        task = _task(family, request, dev, ctx)
        if rank == 0:
            _note_and_save(request, run_dir, stream, progress, resume=resume)
        if resume:
            harness["device"] = dev
            trainer = Trainer.resume(run_dir, task, stream, progress=progress, **harness)
        else:
            config = TrainConfig(run_dir=run_dir, seed=int(request["seed"]), device=dev, **harness)
            trainer = Trainer(task, stream, config, progress=progress)
        trainer.run()
    finally:
        _close(stream)
    distributed.barrier()
    if rank != 0:
        return None
    model = load_weights(run_dir / "model.safetensors")
    header = _header(model.header, request)
    if header != model.header:  # the run's copy carries the same provenance as the stored one
        save_weights(run_dir / "model.safetensors", model.tensors, header)
    return ctx.store.put(request["name"], model.tensors, header, overwrite=True)


def _note_and_save(
    request: dict[str, Any], run_dir: Path, stream: Any, progress: TrainProgress, *, resume: bool
) -> None:
    """Rank 0, once the family has accepted the recipe: what it will not reach (a new run), and
    the request with the data's summary, for resume and export."""
    if not resume:
        from posterforge.training.schedules import unreached

        max_steps = int(request["recipe"]["train"]["max_steps"])
        for note in unreached(request["recipe"]["model"], max_steps):
            progress.notify(f"posterforge: note: {note}")
    summary = getattr(stream, "summary", None)
    if summary is not None:
        request["data_summary"] = summary()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "request.json", json.dumps(request, indent=2) + "\n")
    data_report = getattr(stream, "data_report", None)  # the data's problems, all of them
    text = data_report() if data_report is not None else None
    if text:
        write_text_atomic(run_dir / "data-report.txt", text)
        progress.notify(f"posterforge: the data's problems, all of them: {run_dir}/data-report.txt")


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def export(
    run_dir: str | Path,
    name: str,
    *,
    step: int | None = None,
    overwrite: bool = False,
    direction: str | None = None,
    best: bool = False,
    store: Store | None = None,
    ctx: Context | None = None,
) -> Path:
    """Store the model of any checkpoint of a run (the newest, or ``step``) under ``name``;
    ``direction``: another net the family exports (``"b2a"``: a CycleGAN run's G_BA). Needs
    only the run folder: the training data may be gone. ``best``: the checkpoint of the run's
    best step by its ``best_by`` metric (``RUN/checkpoints/best.pt``) instead."""
    from posterforge.context import default_context

    ctx = ctx or default_context(store)
    job = ExportJob.create(
        ctx, run_dir, name, step=step, overwrite=overwrite, direction=direction, best=best
    )
    return export_run(job, ctx)


def export_run(job: ExportJob, ctx: Context) -> Path:
    """Run an export job (see :func:`export`)."""
    from posterforge.training.checkpoints import load_checkpoint

    family = family_for(job.request["kind"], job.request["arch"], ctx.host)
    task = _task(family, job.request, "cpu", ctx)
    method = family.export_method(job.direction)
    task.load_state_dict(load_checkpoint(job.checkpoint)["task"])
    tensors, header = getattr(task, method)()
    return ctx.store.put(job.name, tensors, _header(header, job.request), overwrite=job.overwrite)
