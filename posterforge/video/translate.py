"""Translate video files: frames stream through the same engine as images, into segments that a
killed run resumes, joined at the end with the input's audio and subtitles copied.

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
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import claim
from posterforge.errors import PosterforgeError
from posterforge.records import FAILED, OK, SKIPPED, Record
from posterforge.sizing import Size, resize
from posterforge.video.containers import default_vcodec, muxer_for, names_video_file
from posterforge.video.io import EncodeSpec, Probe, VideoError, even, frame_step
from posterforge.video.segments import (
    Parts,
    SegmentWriter,
    copyable,
    join,
    parts_dir,
    segment_seconds,
)

if TYPE_CHECKING:
    import numpy as np

    from posterforge.engine import Engine
    from posterforge.inputs import Job

log = logging.getLogger(__name__)


@dataclass
class VideoRecord(Record):
    """A :class:`~posterforge.translation.Record` for a video: ``frames`` in the output,
    ``seconds`` this run spent on it, and a ``note`` when the input was damaged."""

    frames: int | None = None
    seconds: float = 0.0
    note: str | None = None


def video_settings(engine: Engine, size: Size | None, vcodec: str, crf: int | None) -> dict:
    """What makes a translated video: recorded per output, so a re-run skips only what the same
    settings made, and in the work folder, so it resumes only what they started."""
    return {
        "command": "translate",
        "kind": "video",
        "model": engine.model_id,
        "size": None if size is None else str(size),
        "precision": engine.precision,
        "vcodec": vcodec,
        "crf": crf,
        "pix_fmt": "yuv420p",
    }


class VideoRun:
    """The videos of one translate run. Construction checks everything that can be checked
    before work (encoder, container, outputs made with other settings, unfinished work made
    with other settings) and raises :class:`PosterforgeError`; :meth:`run` yields a record
    per video."""

    def __init__(
        self,
        pairs: Sequence[tuple[Job, Path]],
        out: str | Path,
        *,
        engine: Engine,
        batch_size: int,
        size: Size | None,
        vcodec: str | None,
        crf: int | None,
        overwrite: bool,
        notify: Callable[[str], None] | None = None,
        on_frames: Callable[[int], None] | None = None,
    ):
        from posterforge.outputs import reserve
        from posterforge.video.io import check_codec

        self.engine, self.batch_size, self.size = engine, batch_size, size
        self.overwrite = overwrite
        self.notify = notify or log.warning
        self.on_frames = on_frames or (lambda n: None)
        root = Path(out).parent if names_video_file(out) else Path(out)
        codecs: dict[str, list[tuple[Job, Path]]] = {}
        for job, dest in pairs:
            codecs.setdefault(vcodec or default_vcodec(dest), []).append((job, dest))
        self.todo: list[tuple[Job, Path, str, int | None, dict]] = []
        self.completed: list[Callable[[], None]] = []
        for name, group in codecs.items():
            used_crf = check_codec(name, crf, {d.suffix for _, d in group})
            settings = video_settings(engine, size, name, used_crf)
            for _, dest in group:
                if not overwrite and (why := Parts(dest, settings, {}).conflict()) is not None:
                    raise PosterforgeError(
                        f"{parts_dir(dest)}: unfinished work on {dest.name} {why}; pass "
                        "--overwrite to discard it, or write to another --out"
                    )
            dests = [d for _, d in group]
            self.completed.append(reserve(root, settings, dests, overwrite=overwrite))
            self.todo += [(job, dest, name, used_crf, settings) for job, dest in group]

    def run(self) -> Iterator[VideoRecord]:
        for job, dest, vcodec, crf, settings in self.todo:
            yield self.one(job, dest, vcodec, crf, settings)
        for done in self.completed:
            done()

    # -- one video --------------------------------------------------------------------------------
    def one(
        self, job: Job, dest: Path, vcodec: str, crf: int | None, settings: dict
    ) -> VideoRecord:
        start = time.perf_counter()
        src = str(job.src)

        def record(status: str, error: str | None = None, **kw: Any) -> VideoRecord:
            secs = time.perf_counter() - start
            output = str(dest) if status != FAILED else None
            return VideoRecord(
                src, output, status, error, round(secs * 1000, 1), seconds=round(secs, 2), **kw
            )

        if dest.is_dir():
            return record(FAILED, f"cannot write {dest}: a folder of that name is in the way")
        if dest.exists() and not self.overwrite:
            _drop_leftover_parts(dest)
            return record(SKIPPED, "output exists (use --overwrite)")
        try:
            held = claim(dest)
        except OSError as e:
            return record(FAILED, f"cannot write {dest}: {e.strerror or e}")
        if held is None:
            return record(FAILED, "another run is translating it now; run again once it is done")
        try:
            if dest.exists() and not self.overwrite:  # another run finished it meanwhile
                return record(SKIPPED, "finished by another process")
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

        from posterforge.video.io import probe
        from posterforge.video.segments import input_identity

        info = probe(src)  # before the work folder exists: a bad input leaves nothing
        info.copied, left_out = copyable(src, info.copied, muxer_for(dest))
        others = [f"{o} left out (only audio and subtitles are copied)" for o in info.others]
        for what in [*left_out, *others]:
            self.notify(f"{src}: {what}")
        parts = Parts(dest, settings, input_identity(src))
        if (why := parts.open()) is not None:
            self.notify(f"{src}: {why}")
        if parts.segments:
            self.notify(
                f"{src}: resuming after {parts.frames_done} frames "
                f"({len(parts.segments)} finished segment(s))"
            )
        plan = _Plan(info, self.size, vcodec, crf)
        if plan.cropped:
            w, h = info.upright
            self.notify(
                f"{src}: {w}x{h} has an odd side, and 4:2:0 video needs even ones: cropped "
                f"to {plan.out_w}x{plan.out_h}"
            )
        self._expect(plan, info.frames)
        try:
            pipeline = _Pipeline(self, info, plan, parts)
            try:
                frames, note = pipeline.run()
            except _Mismatch:
                self.notify(
                    f"{src}: the input no longer matches the finished segments: starting over"
                )
                parts.restart()
                pipeline = _Pipeline(self, info, plan, parts)
                frames, note = pipeline.run()
            if frames == 0:
                parts.remove()
                raise VideoError(src, "no frame decodes")
            segments = [(parts.dir / s.file, s.first_pts) for s in parts.segments]
            notes = join(segments, src, info.copied, dest, muxer_for(dest))
        except av.FFmpegError as e:
            raise VideoError(src, f"FFmpeg: {e}") from None
        finally:
            if not parts.segments:  # nothing to resume from: leave nothing behind
                parts.remove()
        parts.remove()
        for extra in notes:
            self.notify(f"{src}: {extra}")
        return frames, note

    def _expect(self, plan: _Plan, frames: int) -> None:
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


class _Plan:
    """Sizes and encoder settings for one video: the model sees frames upright (the display
    matrix applied) at ``--size``; the output is stored as the input is, with its matrix."""

    def __init__(self, info: Probe, size: Size | None, vcodec: str, crf: int | None):
        self.turns = info.rotation // 90  # counter-clockwise quarter turns to upright
        uw, uh = info.upright
        tw, th = (uw, uh) if size is None else size.target(uw, uh)
        self.out_w, self.out_h = even(tw), even(th)  # upright
        self.cropped = size is None and (self.out_w, self.out_h) != (uw, uh)
        # the model's input: resized straight to the even size when resizing at all
        self.resize = None if size is None else Size(width=self.out_w, height=self.out_h)
        self.model_w, self.model_h = (self.out_w, self.out_h) if size is not None else (uw, uh)
        stored = (self.out_h, self.out_w) if self.turns % 2 else (self.out_w, self.out_h)
        self.spec = EncodeSpec(
            vcodec=vcodec,
            crf=crf,
            width=stored[0],
            height=stored[1],
            time_base=info.time_base,
            rate=info.rate,
            color_range=info.color_range,
            colorspace=info.colorspace,
            color_primaries=info.color_primaries,
            color_trc=info.color_trc,
            sample_aspect_ratio=info.sample_aspect_ratio if size is None else None,
            display_matrix=info.display_matrix,
        )


class _Mismatch(Exception):
    """The frames before the resume point are not those the finished segments were made from."""


_END = object()


@dataclass
class _Frame:
    pts: int
    duration: int | None
    rgb: np.ndarray


@dataclass
class _Failure:
    error: BaseException


class _Pipeline:
    """One pass over a video: decode thread, model on the calling thread, encode thread."""

    def __init__(self, run: VideoRun, info: Probe, plan: _Plan, parts: Parts):
        self.run_, self.info, self.plan, self.parts = run, info, plan, parts
        depth = 2 * run.batch_size + 2
        self.decoded: queue.Queue[Any] = queue.Queue(depth)
        self.encoded: queue.Queue[Any] = queue.Queue(depth)
        self.stop = threading.Event()
        from posterforge.video.io import Damage

        self.damage = Damage()
        self.frames = parts.frames_done  # frames in the output so far
        self.end_time: float | None = None
        self.encode_error: BaseException | None = None

    def run(self) -> tuple[int, str | None]:
        decoder = threading.Thread(target=self._decode, name="posterforge-decode", daemon=True)
        encoder = threading.Thread(target=self._encode, name="posterforge-encode", daemon=True)
        decoder.start()
        encoder.start()
        finished = False
        try:
            self._compute()
            self._put(self.encoded, _END)
            encoder.join()
            finished = True
        finally:
            if not finished:
                self.stop.set()
                _drain(self.encoded)
                self.encoded.put(_Failure(KeyboardInterrupt()))
            self.stop.set()
            _drain(self.decoded)
            decoder.join()
            encoder.join()
        if self.encode_error is not None:
            raise self.encode_error
        info = self.info
        # two frames of slack; half a second more when only the container's length is known
        slack = 2 / float(info.rate) + (0 if info.duration_exact else 0.5)
        note = self.damage.note(self.frames, self.end_time, info.duration, info.start, slack)
        if self.damage.reordered:
            extra = f"{self.damage.reordered} frame time stamp(s) out of order were moved on"
            note = f"{note}; {extra}" if note else extra
        return self.frames, note

    # -- threads -----------------------------------------------------------------------------------
    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        skip, last_done = self.parts.frames_done, self.parts.last_pts
        try:
            index = 0
            for pts, duration, frame in self._timed_frames():
                if self.stop.is_set():
                    return
                if index < skip:
                    if index == skip - 1 and pts != last_done:
                        self._put(self.decoded, _Failure(_Mismatch()))
                        return
                    index += 1
                    continue
                index += 1
                from posterforge.video.io import to_rgb

                # a stream whose frame size changes midway is scaled to its first size
                size = (self.info.width, self.info.height)
                rgb = to_rgb(frame, size if (frame.width, frame.height) != size else None)
                if not self._put(self.decoded, _Frame(pts, duration, rgb)):
                    return
            if index < skip:
                self._put(self.decoded, _Failure(_Mismatch()))
                return
            self._put(self.decoded, _END)
        except BaseException as e:  # handed to the main thread, which raises it
            self._put(self.decoded, _Failure(e))

    def _timed_frames(self) -> Iterator[tuple[int, int, Any]]:
        """(pts, duration, frame) in order. Time stamps only go forward (a missing one follows
        the last by a frame, one that goes back is moved just past it); a frame lasts until the
        next one starts, the last until the stream's declared end (else as long as the one
        before it). Frames' own durations are not used: decoders reorder them with B-frames."""
        from posterforge.video.io import decode, open_input, video_stream

        info = self.info
        tb = info.time_base
        step = frame_step(tb, info.rate)
        with open_input(info.path) as container:
            stream = video_stream(container, info.path)
            stream.thread_type = "AUTO"
            held: tuple[int, Any] | None = None
            last_step = step
            for frame in decode(container, stream, self.damage):
                pts = frame.pts
                if held is not None:
                    if pts is None:
                        pts = held[0] + last_step
                    elif pts <= held[0]:
                        pts = held[0] + 1
                        self.damage.reordered += 1
                    last_step = pts - held[0]
                    yield held[0], last_step, held[1]
                elif pts is None:
                    pts = 0
                held = (pts, frame)
                self.damage.last_time = float(pts * tb)
            if held is not None:
                pts, frame = held
                duration = last_step
                if info.end_pts is not None and 0 < info.end_pts - pts <= 4 * last_step:
                    duration = info.end_pts - pts
                self.end_time = float((pts + duration) * tb)
                yield pts, duration, frame

    def _encode(self) -> None:
        writer = SegmentWriter(self.parts, self.plan.spec, segment_seconds())
        try:
            while True:
                item = self.encoded.get()
                if item is _END:
                    writer.finish()
                    return
                if isinstance(item, _Failure):
                    writer.abort()
                    return
                writer.write(item.rgb, item.pts, item.duration)
        except BaseException as e:
            writer.abort()
            self.encode_error = e
            self.stop.set()

    # -- the model ---------------------------------------------------------------------------------
    def _next(self) -> Any:
        while True:
            if self.encode_error is not None:
                return _END
            try:
                return self.decoded.get(timeout=0.1)
            except queue.Empty:
                continue

    def _compute(self) -> None:
        batch: list[_Frame] = []
        while True:
            item = self._next()
            if isinstance(item, _Failure):
                raise item.error
            if item is _END:
                break
            batch.append(item)
            if len(batch) >= self.run_.batch_size:
                self._run_batch(batch)
                batch = []
        if batch:
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Frame]) -> None:
        out = self._translate([f.rgb for f in batch])
        for f, rgb in zip(batch, out, strict=True):
            if not self._put(self.encoded, _Frame(f.pts, f.duration, rgb)):
                return
        self.frames += len(batch)
        self.run_.on_frames(len(batch))

    def _translate(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        try:
            return list(self._compute_batch(frames))
        except (MemoryError, torch.OutOfMemoryError) as e:
            if len(frames) > 1:
                half = len(frames) // 2
                return self._translate(frames[:half]) + self._translate(frames[half:])
            h, w = frames[0].shape[:2]
            raise VideoError(
                self.info.path, f"out of memory at {w}x{h} ({e.__class__.__name__}); try --size"
            ) from None

    def _compute_batch(self, frames: list[np.ndarray]) -> np.ndarray:
        import numpy as np
        import torch


        engine, plan = self.run_.engine, self.plan
        layout = torch.channels_last if engine.channels_last else torch.contiguous_format
        with torch.inference_mode():
            x = engine.to_device(torch.from_numpy(np.stack(frames)))
            if plan.turns:
                x = torch.rot90(x, plan.turns, (2, 3)).contiguous(memory_format=layout)
            if plan.resize is not None:
                x = resize(x, plan.resize)
            y = engine.forward(x)
            if plan.turns:
                y = torch.rot90(y, -plan.turns, (2, 3))
            out = engine.to_uint8(y).numpy()
        w, h = plan.spec.width, plan.spec.height
        if out.shape[1:3] != (h, w):  # an odd side cropped to even
            out = np.ascontiguousarray(out[:, :h, :w])
        return out


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def frames_estimate(path: Path) -> int:
    """Frames in a video from its header (0 when unknown), for progress bars."""
    import av

    from posterforge.video.io import declared_duration

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
