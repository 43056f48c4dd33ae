"""One pass of a video through the model: a decode thread, the model on the calling thread, an
encode thread, bounded queues between them (see :mod:`posterforge.video.translate`), and the
sizes and encoder settings each video gets (:class:`VideoPlan`)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from posterforge.sizing import Size, resize
from posterforge.video.colour import to_rgb, written_tags
from posterforge.video.containers import LOSSLESS_VCODEC
from posterforge.video.encode import EncodeSpec, even, frame_step
from posterforge.video.io import Damage, Probe, VideoError, decode, open_input, video_stream
from posterforge.video.segments import Cuts, Parts, SegmentWriter, segment_seconds
from posterforge.video.stable import SceneCuts, restore, snapshot, stabilized, state_bytes

if TYPE_CHECKING:
    import numpy as np

    from posterforge.engine import Engine


@dataclass(frozen=True)
class Model:
    """What the pipeline needs of the run: the engine, its batch size, and who counts frames."""

    engine: Engine
    batch_size: int
    on_frames: Callable[[int], None]


class VideoPlan:
    """Sizes and encoder settings for one video: the model sees frames upright (the display
    matrix applied) at ``--size``; the output is stored as the input is, with its matrix."""

    def __init__(self, info: Probe, size: Size | None, vcodec: str, crf: int | None):
        self.turns = info.rotation // 90  # counter-clockwise quarter turns to upright
        # an animation's frames (lossless RGB segments) are stored upright, at any side
        self.upright_out = vcodec == LOSSLESS_VCODEC
        sides = (lambda n: n) if self.upright_out else even
        uw, uh = info.upright
        tw, th = (uw, uh) if size is None else size.target(uw, uh)
        self.out_w, self.out_h = sides(tw), sides(th)  # upright
        self.cropped = size is None and (self.out_w, self.out_h) != (uw, uh)
        # the model's input: resized straight to the even size when resizing at all
        self.resize = None if size is None else Size(width=self.out_w, height=self.out_h)
        self.model_w, self.model_h = (self.out_w, self.out_h) if size is not None else (uw, uh)
        turned = self.turns % 2 and not self.upright_out
        stored = (self.out_h, self.out_w) if turned else (self.out_w, self.out_h)
        self.spec = EncodeSpec(
            vcodec=vcodec,
            crf=crf,
            width=stored[0],
            height=stored[1],
            time_base=info.time_base,
            rate=info.rate,
            colorspace=written_tags(info.colorspace, info.color_range)[0],
            color_range=written_tags(info.colorspace, info.color_range)[1],
            color_primaries=info.color_primaries,
            color_trc=info.color_trc,
            sample_aspect_ratio=info.sample_aspect_ratio if size is None else None,
            display_matrix=None if self.upright_out else info.display_matrix,
        )


class Mismatch(Exception):
    """The frames before the resume point are not those the finished segments were made from."""


_END = object()


@dataclass
class _Frame:
    pts: int
    duration: int | None
    rgb: np.ndarray
    cut: bool = False  # starts a segment
    scene: bool = False  # --stabilize: starts a shot (the shared statistics restart)
    state: Any = None  # --stabilize, on a segment's first frame: the statistics before it


@dataclass
class _Failure:
    error: BaseException


class Pipeline:
    """One pass over a video: decode thread, model on the calling thread, encode thread."""

    def __init__(self, model: Model, info: Probe, plan: VideoPlan, parts: Parts):
        self.model, self.info, self.plan, self.parts = model, info, plan, parts
        depth = 2 * model.batch_size + 2
        self.decoded: queue.Queue[Any] = queue.Queue(depth)
        self.encoded: queue.Queue[Any] = queue.Queue(depth)
        self.stop = threading.Event()
        self.damage = Damage()
        self.frames = parts.frames_done  # frames in the output so far
        self.end_time: float | None = None
        self.encode_error: BaseException | None = None
        self.stable = stabilized(model.engine)  # --stabilize: see posterforge.video.stable
        self.restored = not (self.stable and parts.segments)  # the state to go on from

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
        cuts = Cuts(self.info.time_base, segment_seconds())
        scenes = SceneCuts(self.info.time_base) if self.stable else None
        try:
            index = 0
            for pts, duration, frame in self._timed_frames():
                if self.stop.is_set():
                    return
                scene = scenes is not None and scenes(pts, frame)  # skipped frames too
                if index < skip:
                    if index == skip - 1 and pts != last_done:
                        self._put(self.decoded, _Failure(Mismatch()))
                        return
                    index += 1
                    continue
                index += 1
                # a stream whose frame size changes midway is scaled to its first size
                size = (self.info.width, self.info.height)
                rgb = to_rgb(frame, size if (frame.width, frame.height) != size else None)
                frame_out = _Frame(pts, duration, rgb, cuts.starts(pts), scene)
                if not self._put(self.decoded, frame_out):
                    return
            if index < skip:
                self._put(self.decoded, _Failure(Mismatch()))
                return
            self._put(self.decoded, _END)
        except BaseException as e:  # handed to the main thread, which raises it
            self._put(self.decoded, _Failure(e))

    def _timed_frames(self) -> Iterator[tuple[int, int, Any]]:
        """(pts, duration, frame) in order. Time stamps only go forward (a missing one follows
        the last by a frame, one that goes back is moved just past it); a frame lasts until the
        next one starts, the last until the stream's declared end (else as long as the one
        before it). Frames' own durations are not used: decoders reorder them with B-frames."""
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
        writer = SegmentWriter(self.parts, self.plan.spec)
        try:
            while True:
                item = self.encoded.get()
                if item is _END:
                    writer.finish()
                    return
                if isinstance(item, _Failure):
                    writer.abort()
                    return
                state = None if item.state is None else state_bytes(item.state)
                writer.write(item.rgb, item.pts, item.duration, item.cut, state)
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
            if (item.cut or item.scene) and batch:  # a batch ends at a segment's start (see
                # Cuts) and at a shot's
                self._run_batch(batch)
                batch = []
            batch.append(item)
            if len(batch) >= self.model.batch_size:
                self._run_batch(batch)
                batch = []
        if batch:
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Frame]) -> None:
        state = None
        if not self.restored:  # a resumed run goes on from the finished segments' state
            restore(self.model.engine, self.parts)
            self.restored = True
        if self.stable:  # the state before the batch's first frame; a shot starts afresh
            first = batch[0]
            state = snapshot(self.model.engine) if first.cut else None
            if first.scene:
                from posterforge.video.stable import reset

                reset(self.model.engine)
        out = self._translate([f.rgb for f in batch])
        for i, (f, rgb) in enumerate(zip(batch, out, strict=True)):
            frame = _Frame(f.pts, f.duration, rgb, f.cut, state=state if i == 0 else None)
            if not self._put(self.encoded, frame):
                return
        self.frames += len(batch)
        self.model.on_frames(len(batch))

    def _translate(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        before = snapshot(self.model.engine) if self.stable else None
        try:
            return list(self._compute_batch(frames))
        except (MemoryError, torch.OutOfMemoryError) as e:
            if before is not None:  # the failed pass advanced some layers' state: undo it
                from posterforge.stabilize import set_norm_state

                set_norm_state(self.model.engine.module, before, self.model.engine.device)
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

        engine, plan = self.model.engine, self.plan
        layout = torch.channels_last if engine.channels_last else torch.contiguous_format
        with torch.inference_mode():
            x = engine.to_device(torch.from_numpy(np.stack(frames)))
            if plan.turns:
                x = torch.rot90(x, plan.turns, (2, 3)).contiguous(memory_format=layout)
            if plan.resize is not None:
                x = resize(x, plan.resize)
            y = engine.forward(x)
            if plan.turns and not plan.upright_out:
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
