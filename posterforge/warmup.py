"""Compile ahead of time: ``posterforge warmup`` fills the compile cache for one model and frame
size, so that later runs of that size compile from the cache (cheap) and "auto" compiles them
from a few hundred frames on instead of a thousand (see :mod:`posterforge.engine`). With
``backend="auto"`` it first calibrates the backends for that size (see
:mod:`posterforge.backends`), so the first run does not; where OpenVINO wins, its compiled model
is what lands in the cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    from posterforge.context import Context
    from posterforge.engine import Engine
    from posterforge.jobs.warmup import WarmupJob


@dataclass
class Warmed:
    """What one warm-up compiled: the run shape, the seconds it took, and whether the cache
    already held it."""

    shape: tuple[int, ...]
    seconds: float
    cached: bool
    backend: str = ""  # the engine's backend line: the path the runs of this size take
    precision: str = ""  # the precision taken and why: ``bf16 (auto: native avx512_bf16, ...)``
    calibration: tuple[str, ...] = ()  # why a calibrated path was taken: its timings, per class


def run_warmup(job: WarmupJob, ctx: Context | None = None) -> Warmed:
    """Compile what ``job`` names (a style at its size, or a generator), with the plugins and
    store of ``ctx`` (default: this process's): what ``posterforge warmup`` and
    :func:`posterforge.warmup` run."""
    common = {"device": job.device, "precision": job.precision, "backend": job.backend}
    if job.style is not None:
        assert job.size is not None  # the job checked it
        return warmup_style(job.style, job.size, batch_size=job.batch_size, ctx=ctx, **common)
    assert job.model is not None
    return warmup_generator(job.model, batch_size=job.batch_size or 64, ctx=ctx, **common)


def eager_note(size: str) -> str | None:
    """A note when ``--compile auto`` leaves frames of ``size`` (WxH) eager whatever the cache
    holds, so that warming them up serves only runs with ``--compile on``; else None."""
    from posterforge.engine import Engine
    from posterforge.sizing import Size

    parsed = Size.parse(size)
    if not (parsed.width and parsed.height):
        return None
    limit = Engine.compile_max_pixels
    if parsed.width * parsed.height <= limit:
        return None
    side = int(limit**0.5)
    return (
        f"--compile auto leaves frames over {side}x{side} eager (they compile for minutes and "
        f"gain little), so this warm-up only helps runs with --compile on"
    )


def warmup_style(
    style: str,
    size: str,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    backend: str = "torch",
    ctx: Context | None = None,
) -> Warmed:
    """Calibrate (``backend="auto"``) and compile ``style``'s translator for frames of ``size``
    (``WxH``, the size the frames have when they reach the model: after ``--size``) at
    ``batch_size`` (translate's default for the device when None)."""
    import torch

    from posterforge.jobs.warmup import frame_size
    from posterforge.translation import default_batch_size, load_engine

    width, height = frame_size(size)
    engine = load_engine(
        style, device=device, precision=precision, compile="on", backend=backend, ctx=ctx
    )
    batch = batch_size or default_batch_size(engine.device.type)
    engine.expect(batch, (height, width), 1)
    engine.decide_paths()
    with torch.inference_mode():  # as translate runs it: dynamo's guards tell the two apart
        engine.forward(torch.zeros((batch, 3, height, width), device=engine.device))
    return _result(engine)


def warmup_generator(
    model: str,
    *,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = "auto",
    backend: str = "torch",
    ctx: Context | None = None,
) -> Warmed:
    """Calibrate (``backend="auto"``) and compile generator ``model`` for batches of
    ``batch_size``."""
    import torch

    from posterforge.generation import load_generator

    gen = load_generator(
        model, device=device, precision=precision, compile="on", backend=backend, ctx=ctx
    )
    label = (gen.label_names or [None])[0]
    dim = None if label is None else int(gen.conditions(label, 1).shape[1])
    gen.engine.expect_samples(batch_size, gen.z_dim, dim, 1)
    gen.engine.decide_paths()
    gen.engine.sample(torch.zeros(batch_size, gen.z_dim), gen.conditions(label, batch_size))
    return _result(gen.engine)


def _result(engine: Engine) -> Warmed:
    from posterforge.backends import OPENVINO

    line, timings = engine.choice.line(), tuple(engine.choice.calibrations())
    if not engine.compiled_shapes:
        for key, decision in engine.choice.decisions.items():
            if decision.path == OPENVINO:  # OpenVINO compiled it, into its own cache
                return Warmed(tuple(key[1]), 0.0, False, line, _precision(engine), timings)
        why = engine.compile_error or "no working C compiler on this machine?"
        raise PosterforgeError(f"compiling failed: {why}; runs stay eager")
    shape, secs, cached = engine.compiled_shapes[0]
    return Warmed(shape, secs, cached, line, _precision(engine), timings)


def _precision(engine: Engine) -> str:
    """What ``auto`` took and why; empty for a precision asked for."""
    how = engine.precision_how
    return "" if how == "asked" else f"{engine.precision} ({how})"
