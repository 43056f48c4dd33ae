"""The frames of a film as ``(seconds from the start, frame)``, going past damage; the frames
each ``--mode`` keeps (the rules are :mod:`posterforge.video.picks`); the black bars of a film,
found by sampling it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.jobs.frames import OURS, FrameOptions, scene_detector
from posterforge.video.films import Film, clock
from posterforge.video.io import open_input, video_stream
from posterforge.video.picks import BAR_SAMPLES, THUMB, BarMeter, Every, ShotPicker

if TYPE_CHECKING:
    import av.video.frame

# A film whose header promises this much more than its packets hold was cut short (audio may
# outlast the picture by a second or two in a whole film).
TRUNCATED_S, TRUNCATED_FRACTION = 2.0, 0.01


def picked(
    frames: Iterator[tuple[float, av.video.frame.VideoFrame]],
    options: FrameOptions,
    fps: float = 24.0,
) -> Iterator[tuple[float, av.video.frame.VideoFrame]]:
    """The frames that ``options.mode`` keeps, in order (before --dedupe and --max); ``fps``
    is the film's frame rate (for the shortest shot, in frames, of PySceneDetect)."""
    if options.mode == "scenes":
        shots: ShotPicker[tuple[float, Any]] = ShotPicker(options.scene_threshold)
        if scene_detector() == OURS:
            for t, frame in frames:
                thumb = frame.reformat(
                    width=THUMB[0], height=THUMB[1], format="rgb24", interpolation="AREA"
                ).to_ndarray()
                yield from shots.feed(t, thumb, (t, frame))
        else:
            yield from _scenedetect_shots(frames, shots, options.scene_threshold, fps)
        yield from shots.finish()
    elif options.mode == "every":
        every = Every(options.every)
        yield from ((t, f) for t, f in frames if every(t))
    else:  # keyframes: the decoder skips the others
        yield from frames


def _scenedetect_shots(
    frames: Iterator[tuple[float, av.video.frame.VideoFrame]],
    shots: ShotPicker[tuple[float, Any]],
    threshold: float,
    fps: float,
) -> Iterator[tuple[float, av.video.frame.VideoFrame]]:
    """The picks of ``shots`` with the cuts PySceneDetect's adaptive detector finds (frames
    reach ``shots`` a few frames late: the detector looks ahead)."""
    from posterforge.video.cuts import DETECT_WIDTH, SceneCuts

    cuts: SceneCuts[tuple[float, Any]] = SceneCuts(threshold, fps)
    for t, frame in frames:
        w = min(DETECT_WIDTH, frame.width)
        h = max(1, round(frame.height * w / frame.width))
        small = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA")
        for (tt, f), starts in cuts.feed(small.to_ndarray(), (t, frame)):
            yield from shots.feed_decided(tt, starts, (tt, f))
    for (tt, f), starts in cuts.finish():
        yield from shots.feed_decided(tt, starts, (tt, f))


def find_bars(film: Film) -> tuple[int, int, int, int] | None:
    """The picture inside the film's black bars, from :data:`BAR_SAMPLES` frames spread over it
    (by seeking; without a known duration, from its key frames), or None when there are none."""
    meter = BarMeter()
    with FilmDecoder(film, keyframes_only=True) as decoder:
        if film.duration:
            decoder.sample(meter, BAR_SAMPLES)
        if meter.samples < min(BAR_SAMPLES, 4):  # no duration, or seeking failed: read through
            meter = BarMeter()
            with FilmDecoder(film, keyframes_only=True) as through:
                for _, frame in through:
                    meter.add(_grey(frame, film))
    box = meter.box()
    if box is None or box == (0, 0, film.width, film.height):
        return None
    return box


def _grey(frame: av.video.frame.VideoFrame, film: Film) -> np.ndarray:
    return frame.to_ndarray(format="gray", width=film.width, height=frame.height)


class FilmDecoder:
    """The frames of a film's video stream as ``(seconds from the start, frame)``.

    Decoding errors are survived (the decoder resumes at the next key frame) and the first is kept
    in ``broken``; a read error ends the film there. ``end`` is how far the packets went.
    """

    def __init__(self, film: Film, keyframes_only: bool = False):
        self.film = film
        self.container = open_input(film.path)
        stream = video_stream(self.container, film.path)  # the stream the probe described
        self.stream = stream
        stream.thread_type = "AUTO"
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        self.tb = stream.time_base or Fraction(1, 1_000_000)
        self.start = stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate
        self.step = float(1 / rate) if rate else 0.04
        self.broken: str | None = None
        self.end = 0.0  # seconds, the end of the last packet read

    def seconds(self, pts: int | None) -> float | None:
        return None if pts is None else max(0.0, float((pts - self.start) * self.tb))

    def __iter__(self) -> Iterator[tuple[float, av.video.frame.VideoFrame]]:
        import av

        last = -self.step
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                self._break("reading", e)
                return
            if packet.pts is not None:
                self.end = max(self.end, self.seconds(packet.pts + (packet.duration or 0)) or 0.0)
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self._break("decoding", e, at=self.seconds(packet.pts))
                continue
            for frame in frames:
                t = self.seconds(frame.pts)
                t = last + self.step if t is None else t
                last = t
                yield t, frame

    def sample(self, meter: BarMeter, n: int) -> None:
        """Add the first frame after each of ``n`` seeks spread over the film to ``meter``."""
        import av

        duration = self.film.duration or 0.0
        for i in range(n):
            target = self.start + int(duration * (i + 0.5) / n / self.tb)
            try:
                self.container.seek(target, stream=self.stream)
                for packet in self.container.demux(self.stream):
                    frames = packet.decode()
                    if frames:
                        meter.add(_grey(frames[0], self.film))
                        break
            except av.error.FFmpegError:
                continue

    def _break(self, what: str, e: Exception, at: float | None = None) -> None:
        if self.broken is None:
            where = clock(self.end if at is None else at)
            reason = getattr(e, "strerror", None) or str(e)
            self.broken = f"{what} broke at {where}: {reason}"

    def truncated(self) -> str | None:
        """Why the film looks cut short (its packets end well before its header says), or None."""
        d = self.film.duration
        if not (self.film.trust_duration and d):
            return None
        if d - (self.end or 0.0) > max(TRUNCATED_S, TRUNCATED_FRACTION * d):
            return f"the film ends at {clock(self.end)} of its {clock(d)}: truncated or corrupt"
        return None

    def close(self) -> None:
        with suppress(Exception):
            self.container.close()

    def __enter__(self) -> FilmDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
