"""A morph run (``posterforge morph``, ``posterforge.morph``): a video that moves through stops,
each the poster of a (genre, seed) pair, written through the video package's segments.

    MorphJob ─► start(): build the model once, check every genre, the space, the encoder ─►
    MorphRun.records(): frames in fixed batches ─► segments (resumable) ─► join or animation

Between two stops a frame's place ``t`` (0 to 1) is eased (``(1 - cos(pi t)) / 2``: no jump in
speed at a stop); its label row is the stops' rows blended linearly, and its noise is the stops'
noise slerped in z (spherical: noise keeps its length), or, for a model whose latent is W
(:class:`~posterforge.models.LatentGenerator` with ``latent_kind`` "w"), the stops' w lerped and
rendered. A stop's noise is that of ``generate --seeds``: the first and last frames are those
posters. Frames are computed in batches that never span a segment's start, so a resumed run
batches every frame as the first run did, and writes the same bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.context import Context
from posterforge.errors import PosterforgeError
from posterforge.jobs.morph import MorphJob
from posterforge.records import OK, SKIPPED, Status
from posterforge.sampling import LoadedGenerator, load_generator, noise_at

if TYPE_CHECKING:
    import torch

    from posterforge.video.encode import EncodeSpec


@dataclass
class MorphRecord:
    """The video a morph wrote (``ok``) or found written by the same settings (``skipped``);
    ``resumed``: the frames an earlier, interrupted run had finished."""

    output: str
    status: Status
    frames: int
    space: str
    resumed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}


def ease(t: float) -> float:
    """0 -> 0, 1 -> 1 exactly, with zero speed at both ends."""
    return 0.0 if t <= 0 else 1.0 if t >= 1 else (1 - math.cos(math.pi * t)) / 2


def place(i: int, frames: int, stops: int) -> tuple[int, float]:
    """Frame ``i`` of ``frames``: the stop it leaves and its eased place toward the next."""
    u = i * (stops - 1) / (frames - 1)
    k = min(int(u), stops - 2)
    return k, ease(u - k)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of rows ``a`` to ``b`` (linear where they are parallel)."""
    import torch

    if t <= 0:
        return a
    if t >= 1:
        return b
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    if t <= 0:
        return a
    if t >= 1:
        return b
    return (1 - t) * a + t * b


@dataclass(eq=False)
class Route:
    """The stops' noise (or w) and label rows, and how to render a batch of places."""

    gen: LoadedGenerator
    space: str  # "z" or "w"
    latents: list[torch.Tensor]  # (1, D) each
    rows: list[torch.Tensor | None]  # (1, C) each, None when unconditional

    def frame_inputs(self, places: list[tuple[int, float]]) -> tuple[Any, Any]:
        import torch

        mix = slerp if self.space == "z" else lerp
        lat = torch.cat([mix(self.latents[k], self.latents[k + 1], t) for k, t in places])
        if self.rows[0] is None:
            return lat, None
        rows = [lerp(self.rows[k], self.rows[k + 1], t) for k, t in places]  # type: ignore[arg-type]
        return lat, torch.cat(rows)

    def render(self, places: list[tuple[int, float]]) -> Any:
        """uint8 ``(B, H, W, 3)`` numpy frames."""
        from posterforge.engine import Engine

        lat, cond = self.frame_inputs(places)
        engine = self.gen.engine
        out = engine.sample(lat, cond) if self.space == "z" else engine.call("render", lat, cond)
        return Engine.to_uint8(out).numpy()


def start(
    job: MorphJob, ctx: Context | None = None, *, generator: LoadedGenerator | None = None
) -> MorphRun:
    """Build the model once and check everything that can be checked before work (genres, the
    space, the encoder, the output's size, unfinished work made otherwise); one line each."""
    from posterforge.atomic import check_writable

    dest = job.out
    check_writable(dest.absolute().parent)
    gen = generator or load_generator(
        job.model, device=job.device, precision=job.precision, compile=job.compile, ctx=ctx
    )
    captions = [gen.caption(spec) for spec, _ in job.stops]  # unknown genres fail here
    space = choose_space(job, gen)
    vcodec, crf = _encoder(job)
    w, h = gen.image_size
    from posterforge.video.containers import is_animation

    if is_animation(dest):
        from posterforge.video.animation import check_size

        check_size(job.frames, w, h, dest)
    path = _path(job, gen, space)
    run = MorphRun(job, gen, path, captions, vcodec, crf)
    run.check_unfinished()
    run.reserve()
    return run


def choose_space(job: MorphJob, gen: LoadedGenerator) -> str:
    """``z`` or ``w``: w needs a :class:`~posterforge.models.LatentGenerator` whose latent is W."""
    from posterforge.capabilities import require
    from posterforge.models import LatentGenerator

    module = gen.module
    has_w = isinstance(module, LatentGenerator) and module.latent_kind == "w"
    if job.space == "w" and not has_w:
        require(object(), LatentGenerator, "W latent (LatentGenerator with latent_kind 'w')",
                gen.name or job.model, verb="morph in W", family=_family(gen))  # fmt: skip
    if job.space == "z" or not has_w:
        return "z"
    return "w"


def _family(gen: LoadedGenerator) -> str | None:
    """The registered class's name (``model_id`` is ``name:sha256``)."""
    return gen.engine.model_id.split(":")[0] or None


def _encoder(job: MorphJob) -> tuple[str, int | None]:
    from posterforge.video.containers import LOSSLESS_VCODEC, default_vcodec, is_animation

    if is_animation(job.out):
        return LOSSLESS_VCODEC, None
    from posterforge.video.codecs import check_codec

    vcodec = job.vcodec or default_vcodec(job.out)
    return vcodec, check_codec(vcodec, job.crf, {job.out.suffix})


def _path(job: MorphJob, gen: LoadedGenerator, space: str) -> Route:
    zs = [noise_at([(seed, 0)], gen.z_dim) for _, seed in job.stops]
    rows = [gen.conditions(spec, 1) for spec, _ in job.stops]
    if space == "z":
        return Route(gen, space, zs, rows)
    latents = [gen.engine.call("to_latent", z, c).cpu() for z, c in zip(zs, rows, strict=True)]
    return Route(gen, space, latents, rows)


@dataclass(eq=False)
class MorphRun:
    """A planned morph, its model built: :meth:`records` does the work."""

    job: MorphJob
    generator: LoadedGenerator
    path: Route
    captions: list[str]
    vcodec: str
    crf: int | None
    on_frames: Callable[[int], None] = field(default=lambda n: None)
    completed: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def settings(self) -> dict[str, Any]:
        """What makes the video: a re-run with other settings is refused, not skipped."""
        job, engine = self.job, self.generator.engine
        return {
            "command": "morph",
            "model": engine.model_id,
            "stops": [[c, s] for c, (_, s) in zip(self.captions, job.stops, strict=True)],
            "frames": job.frames,
            "rate": str(job.rate),
            "space": self.path.space,
            "batch_size": job.batch_size,
            "precision": engine.precision,
            "vcodec": self.vcodec,
            "crf": self.crf,
        }

    def check_unfinished(self) -> None:
        from posterforge.video.segments import Parts, parts_dir

        dest = self.job.out
        why = Parts(dest, self.settings, {}).conflict()
        if not self.job.overwrite and why is not None:
            raise PosterforgeError(
                f"{parts_dir(dest)}: unfinished work on {dest.name} {why}; pass --overwrite to "
                "discard it, or write to another --out"
            )

    def reserve(self) -> None:
        """Check the output against the folder's record of outputs (one made with other
        settings is refused unless ``overwrite``) and reserve it for these settings."""
        from posterforge.atomic import remove_stale
        from posterforge.outputs import reserve

        job, dest = self.job, self.job.out
        root = dest.absolute().parent
        root.mkdir(parents=True, exist_ok=True)
        remove_stale(root)  # temp files of a killed run (dead writers only)
        self.completed = reserve(root, self.settings, [dest.absolute()], overwrite=job.overwrite,
                                 shown={"model": ("model", job.model)})  # fmt: skip

    def records(self) -> Iterator[MorphRecord]:
        """The one record of the video, once written (or found written by these settings)."""
        from posterforge.atomic import claim

        job, dest = self.job, self.job.out
        if self.completed is None:
            self.reserve()
        if dest.is_file() and not job.overwrite:  # made by these settings (else refused)
            yield MorphRecord(str(dest), SKIPPED, job.frames, self.path.space)
            return
        held = claim(dest)
        if held is None:
            raise PosterforgeError(f"{dest}: another run is writing it now; run again once done")
        began = time.perf_counter()
        try:
            resumed = self._write(dest)
        finally:
            held.release()
        assert self.completed is not None
        self.completed()
        secs = round(time.perf_counter() - began, 2)
        yield MorphRecord(str(dest), OK, job.frames, self.path.space, resumed, secs)

    def _write(self, dest: Path) -> int:
        """Render every frame not in a finished segment, then join; the frames resumed."""
        from posterforge.video.segments import Parts, SegmentWriter

        parts = Parts(dest, self.settings, {"made": "morph"})
        parts.open()
        resumed = parts.frames_done
        if resumed:
            self.on_frames(resumed)
        spec = self._spec()
        step, stops = spec_step(self.job.rate), len(self.job.stops)
        writer = SegmentWriter(parts, spec)
        try:
            for batch in self._batches(resumed, spec):
                frames = self.path.render([place(i, self.job.frames, stops) for i, _ in batch])
                for (i, cut), rgb in zip(batch, frames, strict=True):
                    writer.write(self._fit(rgb, spec), i * step, step, cut)
                self.on_frames(len(batch))
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        self._finish(parts, dest)
        return resumed

    def _batches(self, first: int, spec: EncodeSpec) -> Iterator[list[tuple[int, bool]]]:
        """(index, starts a segment) of every frame from ``first``, in batches that end at
        each segment's start (see :class:`~posterforge.video.segments.Cuts`)."""
        from posterforge.video.segments import Cuts, segment_seconds

        cuts = Cuts(spec.time_base, segment_seconds())
        step = spec_step(self.job.rate)
        batch: list[tuple[int, bool]] = []
        for i in range(self.job.frames):
            cut = cuts.starts(i * step)  # every frame, so that the cuts fall as in a first run
            if i < first:
                continue
            if batch and (cut or len(batch) >= self.job.batch_size):
                yield batch
                batch = []
            batch.append((i, cut))
        if batch:
            yield batch

    def _spec(self) -> EncodeSpec:
        from posterforge.video.colour import BT709, LIMITED_RANGE
        from posterforge.video.containers import LOSSLESS_VCODEC
        from posterforge.video.encode import EncodeSpec, even

        w, h = self.generator.image_size
        lossless = self.vcodec == LOSSLESS_VCODEC  # RGB: odd sides are fine
        return EncodeSpec(
            vcodec=self.vcodec, crf=self.crf, width=w if lossless else even(w),
            height=h if lossless else even(h), time_base=Fraction(1, self.job.rate.numerator),
            rate=self.job.rate, color_range=LIMITED_RANGE, colorspace=BT709,
            color_primaries=1, color_trc=1,
        )  # fmt: skip

    @staticmethod
    def _fit(rgb: Any, spec: EncodeSpec) -> Any:
        import numpy as np

        if rgb.shape[:2] != (spec.height, spec.width):  # an odd side cropped to even
            rgb = rgb[: spec.height, : spec.width]
        return np.ascontiguousarray(rgb)

    def _finish(self, parts: Any, dest: Path) -> None:
        from posterforge.video.containers import is_animation, muxer_for

        files = [parts.dir / s.file for s in parts.segments]
        if is_animation(dest):
            from posterforge.video.animation import write_animation

            write_animation(files, dest)
        else:
            from posterforge.video.join import join

            segments = [(f, s.first_pts) for f, s in zip(files, parts.segments, strict=True)]
            join(segments, None, [], dest, muxer_for(dest), rate=self.job.rate)
        parts.remove()


def spec_step(rate: Fraction) -> int:
    """One frame in time-base units (the time base is 1 / the rate's numerator)."""
    return rate.denominator


def morph_iter(job: MorphJob, ctx: Context | None = None) -> Iterator[MorphRecord]:
    """:func:`start` then :meth:`MorphRun.records`."""
    yield from start(job, ctx).records()
