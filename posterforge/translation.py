"""A translate run: the job's style resolved once, its inputs planned (:mod:`posterforge.planning`),
then images through :mod:`posterforge.image_pipeline` and videos through
:mod:`posterforge.video.translate`, both under one outputs record and one resume rule.

    TranslateJob ─► start(): resolve model ─► plan pairs ─► check encoders, --out ─► build
    engine ─► TranslateRun.records(): images (decode, batch, model, encode) ─► videos ─► Records

Only the list of paths is held whole (for collisions, sharding and the ETA).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from posterforge.atomic import check_writable
from posterforge.catalog import ResolvedModel
from posterforge.context import Context, default_context
from posterforge.image_pipeline import ImageRunner, remove_stale_temps, to_do
from posterforge.inputs import Job
from posterforge.jobs.translate import DEFAULT_STYLE, TranslateJob
from posterforge.outputs import reserve
from posterforge.planning import expect_job, plan
from posterforge.records import Kind, Record

if TYPE_CHECKING:
    from posterforge.engine import Engine

log = logging.getLogger(__name__)


def default_batch_size(device_type: str) -> int:
    """Batches feed an accelerator; on the CPU, batching measured no faster (the convolutions are
    compute-bound at batch 1) and multiplies memory, so the CPU takes one image at a time."""
    return 1 if device_type == "cpu" else 8


def load_engine(
    style: str | ResolvedModel = DEFAULT_STYLE,
    *,
    device: str = "auto",
    precision: str = "fp32",
    compile: str = "auto",
    backend: str = "torch",
    ctx: Context | None = None,
) -> Engine:
    """Resolve a style (name, weight file, or a model resolved already), build its network and
    wrap it in an Engine (``backend``: see :mod:`posterforge.backends`)."""
    from posterforge.backends import architecture
    from posterforge.engine import Engine, resolve_device

    model = style if isinstance(style, ResolvedModel) else _resolve(style, ctx)
    cls = model.cls
    return Engine(
        model.build(),
        resolve_device(device),
        multiple=cls.multiple,
        min_size=cls.min_size,
        precision=precision,
        compile=compile,
        model_id=model.model_id,
        backend=backend,
        arch=architecture(model),
        exportable=getattr(cls, "exportable", True),
    )


def _resolve(style: str, ctx: Context | None) -> ResolvedModel:
    from posterforge.catalog import resolve_model

    ctx = ctx or default_context()
    return resolve_model(style, Kind.TRANSLATOR, ctx.host, ctx.store)


def start(
    job: TranslateJob,
    ctx: Context | None = None,
    *,
    stdin: TextIO | None = None,
    strict: bool = False,
    notify: Callable[[str], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> TranslateRun:
    """Everything a run does before it reads an image, in the order a user wants to hear of
    problems: the style is resolved (once: path, header, sha256, class), the inputs planned, the
    video encoders and the output folder checked, then the model built. Raises on any
    configuration error; then :meth:`TranslateRun.records` does the work.

    ``strict`` (what the command line wants): a named input that does not exist, or inputs that
    hold no image, are errors. ``notify`` receives one-line notes about single inputs (by
    default logged as warnings); ``on_frames`` the number of video frames each batch translated.
    """
    model = _resolve(job.style, ctx)
    pairs = plan(
        job.inputs, job.out, fmt=job.fmt, shard=job.shard, stdin=stdin, null=job.null,
        relative_to=job.relative_to, strict=strict,
    )  # fmt: skip
    run = TranslateRun(job, model, pairs, notify=notify or log.warning, on_frames=on_frames)
    if not pairs:  # an empty shard: nothing to load
        return run
    videos = run.videos
    if videos or job.vcodec is not None or job.crf is not None:
        _check_video_codec(job.vcodec, job.crf, [dest for _, dest in videos])
    if job.overwrite or any(not dest.exists() for _, dest in pairs):
        # before the model loads: a read-only --out fails in a second
        one_file = len(videos) == 1 and pairs[0][1] == job.out
        check_writable(job.out.parent if one_file else job.out)
    run.engine = load_engine(
        model, device=job.device, precision=job.precision, compile=job.compile,
        backend=job.backend,
    )  # fmt: skip
    run.expect()
    return run


@dataclass(eq=False)
class TranslateRun:
    """A planned translate run, its model built: :meth:`records` does the work."""

    job: TranslateJob
    model: ResolvedModel
    pairs: list[tuple[Job, Path]]
    engine: Engine | None = None
    notify: Callable[[str], None] = log.warning
    on_frames: Callable[[int], None] | None = None

    @property
    def videos(self) -> list[tuple[Job, Path]]:
        return [p for p in self.pairs if p[0].video]

    @property
    def batch_size(self) -> int:
        if self.job.batch_size is not None:
            return self.job.batch_size
        return default_batch_size(self.engine.device.type if self.engine else "cpu")

    def expect(self) -> None:
        """Tell the engine the job's frame sizes (finished ones included, so a resumed run
        decides alike) and let it choose each size's path now, before the outputs record."""
        engine = self.engine
        assert engine is not None
        if engine.device.type == "mps" or (engine.compile != "auto" and engine.backend == "torch"):
            return  # mps never compiles nor leaves torch
        sources = [src.src for src, _ in self.pairs if not src.video]
        expect_job(engine, sources, self.batch_size, self.job.size)
        if engine.backend != "torch":
            engine.decide_paths()

    def records(self) -> Iterator[Record]:
        """Translate every input; yields one :class:`Record` per input as it finishes. Bad
        images become ``failed`` records and the run goes on. Videos run after the images, one
        :class:`~posterforge.video.translate.VideoRecord` each."""
        if self.engine is None:
            return
        job, engine, batch_size = self.job, self.engine, self.batch_size
        runner = ImageRunner(engine, batch_size, job, self.notify)
        for folder in dict.fromkeys(dest.parent for _, dest in self.pairs):
            remove_stale_temps(folder, runner.started)
        videos = self.videos
        pairs = [p for p in self.pairs if not p[0].video]
        # existing outputs are skipped only when these settings made them (else refused up front)
        completed: Callable[[], None] = lambda: None  # noqa: E731
        if pairs:
            dests, shown = [d for _, d in pairs], {"model": ("style", job.style)}
            completed = reserve(job.out, _settings(job, engine), dests, overwrite=job.overwrite,
                                shown=shown)  # fmt: skip
        video_run = None
        if videos:  # checks the encoder and the videos' outputs before any work
            from posterforge.video.translate import VideoRun

            video_run = VideoRun(
                videos, job.out, engine=engine, batch_size=batch_size, size=job.size,
                vcodec=job.vcodec, crf=job.crf, overwrite=job.overwrite, notify=self.notify,
                on_frames=self.on_frames,
            )  # fmt: skip
        todo = []
        for item in to_do(pairs, job, runner):
            if isinstance(item, Record):
                yield item
            else:
                todo.append(item)
        yield from runner.run(todo)
        completed()
        if video_run is not None:
            yield from video_run.run()


def _settings(job: TranslateJob, engine: Engine) -> dict[str, Any]:
    """What made an output: a re-run with other settings is refused, not skipped. The backend
    only when not torch: OpenVINO's bytes differ from torch's by a grey level here and there."""
    settings = {
        "command": "translate",
        "model": engine.model_id,
        "size": None if job.size is None else str(job.size),
        "format": job.fmt,
        "alpha": job.alpha,
        "quality": job.quality,
        "metadata": job.metadata,
        "precision": engine.precision,
    }
    if (backend := engine.choice.record()) is not None:
        settings["backend"] = backend
    return settings


def translate_iter(job: TranslateJob, ctx: Context | None = None) -> Iterator[Record]:
    """:func:`start` then :meth:`TranslateRun.records`: one record per input as it finishes."""
    yield from start(job, ctx).records()


def _check_video_codec(vcodec: str | None, crf: int | None, dests: list[Path]) -> None:
    """The encoder each video output uses exists here, takes ``crf`` and fits the container."""
    from posterforge.video.containers import default_vcodec
    from posterforge.video.io import check_codec

    by_codec: dict[str, set[str]] = {}
    for dest in dests:
        by_codec.setdefault(vcodec or default_vcodec(dest), set()).add(dest.suffix)
    if not by_codec:  # --vcodec or --crf without a video: still checked
        by_codec[vcodec or "libx264"] = set()
    for name, suffixes in by_codec.items():
        check_codec(name, crf, suffixes)
