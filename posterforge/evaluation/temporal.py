"""Temporal consistency of a translated clip: the flow-warped error of Lai et al. 2018
("Learning Blind Video Temporal Consistency"), next to the same quantity for the input.

For each pair of consecutive frames ``t - 1, t`` of one shot, optical flow between the *input*
frames (:class:`~posterforge.evaluation.flow.Flow`: OpenCV's DIS, both ways, occluded pixels masked
by forward-backward consistency) moves frame ``t - 1`` onto frame ``t``; the warped error is the
mean squared difference (RGB in [0, 1]) over the trusted pixels. The output's warped error says how
much its frames change where the input's motion does not explain it; the input's, what noise and
flow error alone give. Their ratio is the flicker the translation added (1: none). Shot cuts come
from PySceneDetect on the input (:class:`~posterforge.video.cuts.SceneCuts`); no pair spans a cut.

Streams both clips in step: a few frames in memory whatever the length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    import numpy as np

    from posterforge.jobs.evalvideo import EvalVideoJob
    from posterforge.video.cuts import SceneCuts
    from posterforge.video.sequence import Clip

# the shortest shot, frames: a cut missed costs a pair of frames warped across it (a spike),
# a flash taken for two cuts only a pair or two left out
MIN_SHOT = 2
EPS = 1e-9  # an input's warped error at most this is a still, noiseless clip: no ratio


def _ratio(output: float, input: float) -> float | None:
    return output / input if input > EPS else None


@dataclass
class ShotFlicker:
    """One shot: frames ``start`` to ``end - 1``; the mean warped error over its ``pairs``."""

    start: int
    end: int
    pairs: int = 0
    output: float = 0.0
    input: float = 0.0
    pixels: float = 0.0  # the mean share of pixels the occlusion mask kept

    @property
    def ratio(self) -> float | None:
        return _ratio(self.output, self.input)

    def add(self, out_err: float, in_err: float, kept: float) -> None:
        n = self.pairs
        self.output = (self.output * n + out_err) / (n + 1)
        self.input = (self.input * n + in_err) / (n + 1)
        self.pixels = (self.pixels * n + kept) / (n + 1)
        self.pairs = n + 1

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class FlickerReport:
    """The measure of a whole clip: ``output`` and ``input`` are the mean warped errors over all
    pairs of all shots, ``ratio`` theirs (None for a noiseless still input), ``added`` their
    difference."""

    original: str
    translated: str
    frames: int
    size: tuple[int, int]
    flow: str
    shots: list[ShotFlicker] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return sum(s.pairs for s in self.shots)

    def _mean(self, name: str) -> float:
        n = self.pairs
        return sum(getattr(s, name) * s.pairs for s in self.shots) / n if n else 0.0

    @property
    def output(self) -> float:
        return self._mean("output")

    @property
    def input(self) -> float:
        return self._mean("input")

    @property
    def ratio(self) -> float | None:
        return _ratio(self.output, self.input)

    @property
    def added(self) -> float:
        return self.output - self.input

    @property
    def cuts(self) -> list[int]:
        """The frames that start a shot, after the first."""
        return [s.start for s in self.shots[1:]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "original": self.original, "translated": self.translated, "frames": self.frames,
            "size": list(self.size), "flow": self.flow, "pairs": self.pairs,
            "output": self.output, "input": self.input, "ratio": self.ratio,
            "added": self.added, "cuts": self.cuts, "shots": [s.as_dict() for s in self.shots],
        }  # fmt: skip


def measure_clips(
    job: EvalVideoJob, progress: Callable[[int, int], None] | None = None
) -> FlickerReport:
    """The :class:`FlickerReport` of ``job.translated`` against ``job.original``;
    ``progress(done, total)`` counts frames (the total is the original's header count for a video,
    which may be an estimate)."""
    from posterforge.evaluation.flow import Flow, warped_error
    from posterforge.video.cuts import SceneCuts, need
    from posterforge.video.sequence import frames, open_clip

    need("cv2")
    a, b = open_clip(job.original), open_clip(job.translated)
    if a.size != b.size:
        raise PosterforgeError(
            f"{b.path}: frames of {b.size[0]}x{b.size[1]}, but {a.path}'s are "
            f"{a.size[0]}x{a.size[1]}: compare a translation made at the clip's own size"
        )
    if a.is_folder and b.is_folder and a.frames != b.frames:
        raise PosterforgeError(_count_line(a.path, a.frames, b.path, b.frames))
    flow = Flow()
    report = FlickerReport(str(a.path), str(b.path), 0, a.size, flow.name)
    cuts: SceneCuts[tuple[int, np.ndarray, np.ndarray]] = SceneCuts(
        job.scene_threshold, a.fps, min_shot=MIN_SHOT
    )
    prev: tuple[np.ndarray, np.ndarray] | None = None

    def take(ready: list[tuple[tuple[int, np.ndarray, np.ndarray], bool]]) -> None:
        nonlocal prev
        for (i, x, y), starts in ready:
            if starts or prev is None:
                report.shots.append(ShotFlicker(i, i + 1))
            else:
                warp = flow.warp(prev[0], x)
                out_sum, kept = warped_error(prev[1], y, warp)
                in_sum, _ = warped_error(prev[0], x, warp)
                pixels = max(kept, 1)
                report.shots[-1].add(out_sum / pixels, in_sum / pixels, kept / warp.mask.size)
            report.shots[-1].end = i + 1
            prev = (x, y)

    done = _lockstep(a, b, frames(a), frames(b), cuts, take, progress)
    take(cuts.finish())
    report.frames = done
    return report


def _lockstep(
    a: Clip,
    b: Clip,
    xs: Iterator[np.ndarray],
    ys: Iterator[np.ndarray],
    cuts: SceneCuts[Any],
    take: Callable[[list[Any]], None],
    progress: Callable[[int, int], None] | None,
) -> int:
    """Feed the frames of both clips in step to ``cuts`` and its ready frames to ``take``;
    one line when one clip ends before the other."""
    sentinel = object()
    done = 0
    while True:
        x, y = next(xs, sentinel), next(ys, sentinel)
        if x is sentinel or y is sentinel:
            if x is not y:  # one ended first: count the rest of the longer one
                rest = sum(1 for _ in (ys if x is sentinel else xs)) + 1
                na, nb = (done, done + rest) if x is sentinel else (done + rest, done)
                raise PosterforgeError(_count_line(a.path, na, b.path, nb))
            return done
        take(cuts.feed(x, (done, x, y)))
        done += 1
        if progress is not None:
            progress(done, max(a.frames, done))


def _count_line(pa: object, na: int, pb: object, nb: int) -> str:
    return (
        f"{pb}: {nb} frames, but {pa} has {na}: the translation must hold the clip's frames, "
        "one for one"
    )
