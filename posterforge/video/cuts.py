"""Shot cuts from PySceneDetect (``scenedetect``, the ``video-metrics`` extra), fed one frame at a
time so that a caller can stream: :class:`SceneCuts` wraps its ``AdaptiveDetector``, the detector
whose rule our own :class:`~posterforge.video.picks.ShotPicker` copied (a change above a floor
*and* several times the change around it, so a fast pan is no cut). bench/scene_cuts.py compares
the two on the test clips and the demo clip.

The adaptive detector decides a frame's cut once it has seen ``window`` frames after it, so frames
come back ``window`` frames late, each with whether it starts a shot; at most ``window + 1``
frames are held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

import numpy as np

from posterforge.errors import PosterforgeError

T = TypeVar("T")

WINDOW = 2  # frames either side that the adaptive detector averages the change over
DETECT_WIDTH = 256  # frames are measured at this width (PySceneDetect's own automatic downscale)
MIN_SHOT_S = 0.5  # the shortest shot, seconds (frames --scenes' SETTLE_S)
EXTRA = "video-metrics"


def need(module: str) -> None:
    """One line naming the extra when ``module`` (``cv2``, ``scenedetect``) is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise PosterforgeError(
            f"this needs {module}, from the {EXTRA} extra: pip install 'posterforge[{EXTRA}]'"
        )


def small_bgr(rgb: np.ndarray) -> np.ndarray:
    """An RGB (H, W, 3) uint8 frame as the detector measures it: BGR, at most
    :data:`DETECT_WIDTH` wide."""
    import cv2

    h, w = rgb.shape[:2]
    if w > DETECT_WIDTH:
        rgb = cv2.resize(rgb, (DETECT_WIDTH, max(1, round(h * DETECT_WIDTH / w))),
                         interpolation=cv2.INTER_AREA)  # fmt: skip
    return np.ascontiguousarray(rgb[..., ::-1])


class SceneCuts(Generic[T]):
    """Feed frames in order (:meth:`feed`), then :meth:`finish`; get back ``(payload,
    starts_a_shot)`` in the same order. The first frame starts a shot. ``threshold`` is the
    change (0-1, PySceneDetect's content value over 255) a cut must exceed; a shot lasts at
    least ``min_shot_s`` seconds at ``fps``, or ``min_shot`` frames when given.

    >>> cuts = SceneCuts(fps=12)  # doctest: +SKIP
    >>> [start for _, start in [*cuts.feed(f, i), *cuts.finish()]]  # doctest: +SKIP
    """

    def __init__(
        self,
        threshold: float = 0.06,
        fps: float = 24.0,
        min_shot_s: float = MIN_SHOT_S,
        min_shot: int | None = None,
    ):
        need("scenedetect")
        from scenedetect import AdaptiveDetector

        self.fps = float(fps) if fps and fps > 0 else 24.0
        self.detector = AdaptiveDetector(
            adaptive_threshold=3.0,
            min_scene_len=min_shot or max(1, round(min_shot_s * self.fps)),
            window_width=WINDOW,
            min_content_val=threshold * 255.0,
        )
        self.index = 0
        self.cut_frames: set[int] = {0}
        self.pending: deque[tuple[int, T]] = deque()

    def feed(self, rgb: np.ndarray, payload: T) -> list[tuple[T, bool]]:
        from scenedetect import FrameTimecode

        timecode = FrameTimecode(self.index, self.fps)
        for cut in self.detector.process_frame(timecode, small_bgr(rgb)):
            self.cut_frames.add(cut.frame_num)
        self.pending.append((self.index, payload))
        self.index += 1
        return list(self._ready(WINDOW))

    def finish(self) -> list[tuple[T, bool]]:
        """The last frames (the detector cannot see past the end: no cut is found in them)."""
        return list(self._ready(0))

    def _ready(self, keep: int) -> Iterator[tuple[T, bool]]:
        while len(self.pending) > keep:
            i, payload = self.pending.popleft()
            yield payload, i in self.cut_frames
