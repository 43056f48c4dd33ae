"""The video sink of translate (:class:`VideoRun`, run by :mod:`posterforge.runner`, which
screens and records its outputs). Frames stream through the same engine as images, into
segments that a killed run resumes, joined at the end with the input's audio and subtitles
copied.

    decode thread: demux, decode, RGB ─► queue ─► main: batch, to_device, upright, --size,
    model, back, uint8 ─► queue ─► encode thread: YUV, encode, segment files ─► join (remux)

Memory stays bounded: at most ``2 * batch_size + 2`` decoded frames wait for the model and as
many translated frames wait for the encoder, whatever the length of the film.

A damaged input (a truncated file, packets that do not decode) is translated as far as it
decodes: the record is ``ok`` with a ``note`` saying where it broke, and the output is a whole,
playable file of the frames that decoded. An input with no video stream, a codec FFmpeg cannot
decode, or no frame that decodes is ``failed`` and leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import claim
from posterforge.errors import PosterforgeError
from posterforge.records import FAILED, OK, SKIPPED, Record, Status
from posterforge.runner import Outputs, Todo, claim_output
from posterforge.sizing import Size
from posterforge.video.containers import (
    LOSSLESS_VCODEC,
    default_vcodec,
    is_animation,
    muxer_for,
    names_video_file,
)
from posterforge.video.io import VideoError, declared_duration, probe
from posterforge.video.join import copyable, join
from posterforge.video.pipeline import Mismatch, Model, Pipeline, VideoPlan
from posterforge.video.records import VideoRecord
from posterforge.video.segments import Parts, input_identity, parts_dir
from posterforge.video.stable import StateLost

if TYPE_CHECKING:
    from posterforge.engine import Engine
    from posterforge.inputs import Job

__all__ = ["VideoRecord", "VideoRun", "frames_estimate", "video_settings"]

log = logging.getLogger(__name__)
_Plan = tuple[str, "int | None", dict]  # an output's vcodec, crf and settings


def video_settings(engine: Engine, size: Size | None, vcodec: str, crf: int | None) -> dict:
    """What makes a translated video: recorded per output, so a re-run skips only what the same
    settings made, and in the work folder, so it resumes only what they started."""
    settings = {
        "command": "translate",
        "kind": "video",
        "model": engine.model_id,
        "size": None if size is None else str(size),
        "precision": engine.precision,
        "vcodec": vcodec,
        "crf": crf,
        "pix_fmt": "yuv420p",
    }
    if (strength := getattr(engine, "stabilize", None)) is not None:  # other bytes again
        settings["stabilize"] = strength
    if engine.backend != "torch":  # another path writes other bytes (torch's: left out, as before)
        settings["backend"] = engine.choice.record() or engine.backend
    return settings


@dataclass(frozen=True)
class VideoRun:
    """The video sink of a translate run (a :class:`~posterforge.runner.Sink`): ``pairs`` of
    (input, output), ``out`` as given. :meth:`outputs` checks everything that can be checked
    before work (encoder, container, unfinished work made with other settings) and raises
    :class:`PosterforgeError`; :meth:`run` yields a record per video. A video source yields
    frames with their time stamps (:mod:`posterforge.video.pipeline`), the sink muxes them in
    segments that a killed run resumes (:mod:`posterforge.video.segments`)."""

    pairs: Sequence[tuple[Job, Path]]
    out: str | Path
    _: KW_ONLY
    engine: Engine
    batch_size: int
    size: Size | None
    vcodec: str | None
    crf: int | None
    overwrite: bool
    notify: Callable[[str], None] | None = None
    on_frames: Callable[[int], None] | None = None
    planned: dict[Path, _Plan] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "notify", self.notify or log.warning)
        object.__setattr__(self, "on_frames", self.on_frames or (lambda n: None))
        object.__setattr__(self, "planned", {})

    @property
    def root(self) -> Path:
        return Path(self.out).parent if names_video_file(self.out) else Path(self.out)

    def outputs(self) -> Iterator[Outputs]:
        """One group per encoder, each checked before the outputs record takes it."""
        from posterforge.video.codecs import check_codec

        codecs: dict[str, list[Path]] = {}
        for _, dest in self.pairs:
            if is_animation(dest):
                from posterforge.video.animation import check_options

                check_options(dest, self.vcodec, self.crf)
            name = LOSSLESS_VCODEC if is_animation(dest) else self.vcodec or default_vcodec(dest)
            codecs.setdefault(name, []).append(dest)
        for name, dests in codecs.items():
            if name == LOSSLESS_VCODEC:  # animations: Pillow writes them from exact frames
                used_crf = None
            else:
                used_crf = check_codec(name, self.crf, {d.suffix for d in dests})
            settings = video_settings(self.engine, self.size, name, used_crf)
            for dest in dests:
                self._check_unfinished(dest, settings)
                self.planned[dest] = (name, used_crf, settings)
            yield Outputs(dests, settings)

    def _check_unfinished(self, dest: Path, settings: dict) -> None:
        if not self.overwrite and (why := Parts(dest, settings, {}).conflict()) is not None:
            raise PosterforgeError(
                f"{parts_dir(dest)}: unfinished work on {dest.name} {why}; pass "
                "--overwrite to discard it, or write to another --out"
            )

    def _say(self, line: str) -> None:
        assert self.notify is not None  # set when made
        self.notify(line)

    def _model(self) -> Model:
        assert self.on_frames is not None  # set when made
        return Model(self.engine, self.batch_size, self.on_frames)

    def run(self, items: Iterator[Todo | Record]) -> Iterator[VideoRecord]:
        """One video at a time, in order; the runner's verdicts as video records."""
        for item in items:
            if isinstance(item, Record):
                if item.status == SKIPPED and item.output is not None:
                    _drop_leftover_parts(Path(item.output))
                yield VideoRecord(item.input, item.output, item.status, item.error)
            else:
                yield self.one(item, *self.planned[item.dest])

    # -- one video --------------------------------------------------------------------------------
    def one(self, todo: Todo, vcodec: str, crf: int | None, settings: dict) -> VideoRecord:
        start = time.perf_counter()
        job, dest, src = todo.src, todo.dest, str(todo.src.src)

        def record(status: Status, error: str | None = None, **kw: Any) -> VideoRecord:
            secs = time.perf_counter() - start
            output = str(dest) if status != FAILED else None
            return VideoRecord(
                src, output, status, error, round(secs * 1000, 1), seconds=round(secs, 2), **kw
            )

        held = claim_output(todo)  # the runner has screened it (in the way, exists)
        if isinstance(held, Record):  # cannot be written, or another run has finished it since
            return record(held.status, held.error)
        if held is None:
            return record(FAILED, "another run is translating it now; run again once it is done")
        try:
            frames, note = self._translate(job.src, dest, vcodec, crf, settings)
        except VideoError as e:
            return record(FAILED, e.reason)
        except OSError as e:
            from posterforge.atomic import os_error_line

            return record(FAILED, os_error_line(e))
        except PosterforgeError as e:
            return record(FAILED, str(e))
        except Exception as e:  # one bad video must not end a run of many: a line, not a traceback
            log.debug("translating %s failed", src, exc_info=True)
            return record(FAILED, f"unexpected error: {e.__class__.__name__}: {e}")
        finally:
            held.release()
        return record(OK, frames=frames, note=note)

    def _translate(
        self, src: Path, dest: Path, vcodec: str, crf: int | None, settings: dict
    ) -> tuple[int, str | None]:
        import av

        info = probe(src)  # before the work folder exists: a bad input leaves nothing
        if is_animation(dest):
            left_out = self._animation_checks(info, dest)
        else:
            info.copied, left_out = copyable(src, info.copied, muxer_for(dest))
        others = [f"{o} left out (only audio and subtitles are copied)" for o in info.others]
        for what in [*left_out, *others]:
            self._say(f"{src}: {what}")
        parts = Parts(dest, settings, input_identity(src))
        if (why := parts.open()) is not None:
            self._say(f"{src}: {why}")
        if parts.segments:
            self._say(
                f"{src}: resuming after {parts.frames_done} frames "
                f"({len(parts.segments)} finished segment(s))"
            )
        plan = VideoPlan(info, self.size, vcodec, crf)
        if plan.cropped:
            w, h = info.upright
            self._say(
                f"{src}: {w}x{h} has an odd side, and 4:2:0 video needs even ones: cropped "
                f"to {plan.out_w}x{plan.out_h}"
            )
        self._expect(plan, info.frames)
        try:
            pipeline = Pipeline(self._model(), info, plan, parts)
            try:
                frames, note = pipeline.run()
            except (Mismatch, StateLost) as e:
                why = str(e) or "the input no longer matches the finished segments"
                self._say(f"{src}: {why}: starting over")
                parts.restart()
                pipeline = Pipeline(self._model(), info, plan, parts)
                frames, note = pipeline.run()
            if frames == 0:
                parts.remove()
                raise VideoError(src, "no frame decodes")
            segments = [(parts.dir / s.file, s.first_pts) for s in parts.segments]
            if is_animation(dest):
                from posterforge.video.animation import write_animation

                write_animation([path for path, _ in segments], dest)
                notes = []
            else:
                notes = join(segments, src, info.copied, dest, muxer_for(dest))
        except av.FFmpegError as e:
            raise VideoError(src, f"FFmpeg: {e}") from None
        finally:
            if not parts.segments:  # nothing to resume from: leave nothing behind
                parts.remove()
        parts.remove()
        for extra in notes:
            self._say(f"{src}: {extra}")
        return frames, note

    def _animation_checks(self, info: Any, dest: Path) -> list[str]:
        """An animation holds no sound or subtitles (notes for those left out) and is made in
        memory (refused, before work, when it would not fit)."""
        from posterforge.video.animation import check_size

        w, h = info.upright if self.size is None else self.size.target(*info.upright)
        check_size(info.frames, w, h, dest)
        kind = dest.suffix[1:].upper()
        left = [
            f"stream #{i} left out: an animated {kind} holds only pictures" for i in info.copied
        ]
        info.copied = []
        return left

    def _expect(self, plan: VideoPlan, frames: int) -> None:
        """Tell the engine the job (for its compile decision), the same on every resume."""
        expect = getattr(self.engine, "expect", None)
        if expect is not None and self.engine.compile == "auto" and frames > 0:
            expect(self.batch_size, (plan.model_h, plan.model_w), frames)


def _drop_leftover_parts(dest: Path) -> None:
    """A finished output whose work folder was left behind (a kill between the rename and the
    clean-up): remove the folder, unless another run holds the output."""
    folder = parts_dir(dest)
    if not folder.is_dir():
        return
    try:
        held = claim(dest)
    except OSError:
        return
    if held is not None:
        try:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        finally:
            held.release()


def frames_estimate(path: Path) -> int:
    """Frames in a video from its header (0 when unknown), for progress bars."""
    import av

    from posterforge.images import not_regular

    if not_regular(path) is not None:
        return 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                return 0
            stream = container.streams.best("video")
            if stream.frames:
                return int(stream.frames)
            duration, _ = declared_duration(container, stream)
            rate = stream.average_rate or stream.guessed_rate
            return round(duration * rate) if duration and rate else 0
    except (av.FFmpegError, OSError, ValueError):
        return 0
