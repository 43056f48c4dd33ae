"""A translate run: the job's style resolved once, its inputs planned (:mod:`posterforge.planning`),
then one :class:`~posterforge.runner.Runner` over two sinks, the images
(:mod:`posterforge.image_pipeline`) and the videos (:mod:`posterforge.video.translate`), under
one outputs record and one skip rule.

    TranslateJob ─► start(): resolve model ─► plan pairs ─► check encoders, --out ─► build
    engine ─► TranslateRun.records(): Runner: reserve outputs ─► screen ─► images (decode,
    batch, model, encode) ─► videos (decode, model, segments, join) ─► Records

Only the list of paths is held whole (for collisions, sharding and the ETA).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from posterforge.atomic import check_writable
from posterforge.catalog import ResolvedModel
from posterforge.context import Context, default_context
from posterforge.errors import PosterforgeError
from posterforge.image_pipeline import ImageRunner
from posterforge.inputs import Job
from posterforge.jobs.translate import DEFAULT_STYLE, TranslateJob
from posterforge.planning import expect_job, plan
from posterforge.records import Kind, Record
from posterforge.runner import Runner, Sink

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
    stabilize: float | None = None,
) -> Engine:
    """Resolve a style (name, weight file, or a model resolved already), build its network and
    wrap it in an Engine (``backend``: see :mod:`posterforge.backends`). ``stabilize``: the
    network's stabilised form (:mod:`posterforge.stabilize`) with this strength, on torch and
    eager (neither OpenVINO nor a compiled graph carries its state from frame to frame)."""
    from posterforge.backends import architecture
    from posterforge.engine import Engine, resolve_device

    model = style if isinstance(style, ResolvedModel) else _resolve(style, ctx)
    cls = model.cls
    module = model.build()
    if stabilize is not None:
        from posterforge.stabilize import stabilized

        module = stabilized(module, stabilize, cls.name)
        backend, compile = "torch", "off"
    return Engine(
        module,
        resolve_device(device),
        multiple=cls.multiple,
        min_size=cls.min_size,
        precision=precision,
        compile=compile,
        model_id=model.model_id,
        backend=backend,
        arch=architecture(model),
        exportable=getattr(cls, "exportable", True),
        stabilize=stabilize,
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
    if job.stabilize is not None and (image := next((j for j, _ in pairs if not j.video), None)):
        raise PosterforgeError(
            f"--stabilize works on videos: {image.src} is an image (translate it without "
            "--stabilize, or give only videos)"
        )
    if job.overwrite or any(not dest.exists() for _, dest in pairs):
        # before the model loads: a read-only --out fails in a second
        one_file = len(videos) == 1 and pairs[0][1] == job.out
        check_writable(job.out.parent if one_file else job.out)
    precision, follows = job.precision, None
    if precision == "auto" and not job.overwrite:
        follows = recorded_precision(job, model, pairs)
        precision = follows or precision
    run.engine = load_engine(
        model, device=job.device, precision=precision, compile=job.compile,
        backend=job.backend, stabilize=job.stabilize,
    )  # fmt: skip
    if follows is not None:
        run.engine.precision_how = "auto: as the outputs in --out were made"
    run.expect()
    return run


def recorded_precision(
    job: TranslateJob, model: ResolvedModel, pairs: list[tuple[Job, Path]]
) -> str | None:
    """The precision this model made the planned outputs with, per the outputs record in
    ``--out`` (a re-run or a resumed job): what ``auto`` follows so it continues with the same
    bytes. None when there is no such record, or it holds more than one precision (the outputs
    of another one are then refused, naming both)."""
    from posterforge.engine import PRECISIONS
    from posterforge.outputs import recorded
    from posterforge.video.containers import names_video_file

    video_root = job.out.parent if names_video_file(job.out) else job.out
    found: set[object] = set()
    for root, video in ((job.out, False), (video_root, True)):
        dests = [dest for src, dest in pairs if src.video == video]
        if dests:
            found |= recorded(root, dests, "precision", model.model_id)
    if len(found) == 1 and (only := found.pop()) in PRECISIONS:
        return str(only)
    return None


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
        inputs become ``failed`` records and the run goes on. One :class:`Runner` over two
        sinks: the images, then the videos (one
        :class:`~posterforge.video.translate.VideoRecord` each)."""
        if self.engine is None:
            return
        yield from Runner(self.sinks()).records()

    def sinks(self) -> list[Sink]:
        job, engine, batch_size = self.job, self.engine, self.batch_size
        assert engine is not None
        images = [p for p in self.pairs if not p[0].video]
        sinks: list[Sink] = [ImageRunner(engine, batch_size, job, self.notify, images)]
        if videos := self.videos:
            from posterforge.video.translate import VideoRun

            sinks.append(VideoRun(
                videos, job.out, engine=engine, batch_size=batch_size, size=job.size,
                vcodec=job.vcodec, crf=job.crf, overwrite=job.overwrite, notify=self.notify,
                on_frames=self.on_frames,
            ))  # fmt: skip
        return sinks


def translate_iter(job: TranslateJob, ctx: Context | None = None) -> Iterator[Record]:
    """:func:`start` then :meth:`TranslateRun.records`: one record per input as it finishes."""
    yield from start(job, ctx).records()


def _check_video_codec(vcodec: str | None, crf: int | None, dests: list[Path]) -> None:
    """The encoder each video output uses exists here, takes ``crf`` and fits the container."""
    from posterforge.video.containers import default_vcodec, is_animation
    from posterforge.video.io import check_codec

    by_codec: dict[str, set[str]] = {}
    for dest in dests:
        if is_animation(dest):  # no encoder of ours: Pillow writes it
            from posterforge.video.animation import check_options

            check_options(dest, vcodec, crf)
            continue
        by_codec.setdefault(vcodec or default_vcodec(dest), set()).add(dest.suffix)
    if not by_codec:  # --vcodec or --crf without a video: still checked
        by_codec[vcodec or "libx264"] = set()
    for name, suffixes in by_codec.items():
        check_codec(name, crf, suffixes)
