"""Which frames of a film to keep, in numpy alone: time steps, shot cuts, black bars, near-repeats.

Everything here works on small arrays and plain numbers, so each rule is tested without a video:

- :class:`Every`: the first frame at or after each multiple of a step, by time stamp (variable
  frame rates included).
- :class:`ShotPicker`: one frame per shot. A cut is a jump in the mean absolute difference of
  small colour thumbnails that is above a floor *and* several times the recent change (so a fast
  pan is not a cut), as PySceneDetect's adaptive detector does; the pick is the frame
  :data:`SETTLE_S` after the cut, past the blur and dissolve around it.
- :func:`bar_box`: the picture inside letterbox/pillarbox bars, from frames sampled over the film.
- :func:`dhash` and :class:`Repeats`: a 64-bit difference hash, and near-repeat detection by
  Hamming distance.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from posterforge.jobs.frames import SCENE_THRESHOLD

T = TypeVar("T")

# --- --every --------------------------------------------------------------------------------------


class Every:
    """Pick the first frame at or after each multiple of ``step`` seconds.

    >>> every = Every(1.0)
    >>> [t for t in (0.0, 0.4, 0.9, 1.3, 1.8, 3.2, 3.4) if every(t)]
    [0.0, 1.3, 3.2]
    """

    def __init__(self, step: float):
        if not step > 0 or not math.isfinite(step):
            raise ValueError(f"step must be a positive number of seconds, not {step!r}")
        self.step = step
        self.next = 0.0

    def __call__(self, t: float) -> bool:
        if t + 1e-9 < self.next:  # 1 ns of slack: 0.1 * 3 must count as 0.3
            return False
        # a gap longer than the step (a variable frame rate, a still) covers several multiples
        self.next = (math.floor(t / self.step + 1e-9) + 1) * self.step
        return True


# --- --scenes -------------------------------------------------------------------------------------

THUMB = (64, 36)  # (W, H) of the RGB thumbnails that cuts are measured on
SCENE_RATIO = 3.0  # ... and it must be this many times the mean change of the frames before it
RECENT = 8  # frames that "the change before it" averages over
SETTLE_S = 0.5  # the pick is this far into a shot; also the shortest shot (a flash is no shot)


def change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 thumbnails of one shape, in ``[0, 1]``."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0


@dataclass
class _Shot(Generic[T]):
    start: float
    buffer: list[tuple[float, T]] = field(default_factory=list)  # frames before the pick
    picked: bool = False


class ShotPicker(Generic[T]):
    """Feed every frame in order as ``(time, thumbnail, payload)``; get back the payloads to
    keep: one per shot, the first frame at least :data:`SETTLE_S` after the shot's first frame. A
    shot shorter than that (only the film's last can be, since a cut needs ``SETTLE_S`` since the
    previous one) gives its middle frame at :meth:`finish`.

    Holds at most ``SETTLE_S`` seconds of payloads, whatever the shot's length.
    """

    def __init__(self, threshold: float = SCENE_THRESHOLD):
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be between 0 and 1, not {threshold!r}")
        self.threshold = threshold
        self.prev: np.ndarray | None = None
        self.recent: deque[float] = deque(maxlen=RECENT)
        self.shot: _Shot[T] | None = None
        self.cuts: list[float] = []  # the time of each shot's first frame

    def is_cut(self, t: float, thumb: np.ndarray) -> bool:
        """Whether the frame at ``t`` starts a new shot by our own rule (updates the running
        state): the fallback when PySceneDetect is not installed."""
        prev, self.prev = self.prev, thumb
        if prev is None or prev.shape != thumb.shape:
            return True  # the first frame, or a change of size: a new shot
        d = change(prev, thumb)
        before = sum(self.recent) / len(self.recent) if self.recent else 0.0
        self.recent.append(d)
        return self.long_enough(t) and d > self.threshold and d > SCENE_RATIO * before

    def long_enough(self, t: float) -> bool:
        """Whether the shot has lasted :data:`SETTLE_S` at ``t`` (so a cut may end it)."""
        return self.shot is None or t - self.shot.start >= SETTLE_S - 1e-6

    def feed(self, t: float, thumb: np.ndarray, payload: T) -> list[T]:
        """The next frame, cut or not by :meth:`is_cut` on its thumbnail."""
        return self.feed_decided(t, self.is_cut(t, thumb), payload, checked=True)

    def feed_decided(self, t: float, cut: bool, payload: T, checked: bool = False) -> list[T]:
        """The next frame, whether it starts a shot decided elsewhere (PySceneDetect); unless
        ``checked``, a cut within :data:`SETTLE_S` of the last is ignored."""
        out: list[T] = []
        if self.shot is None or (cut and (checked or self.long_enough(t))):
            out += self._close()
            self.shot = _Shot(t)
            self.cuts.append(t)
            self.recent.clear()  # the cut itself is no measure of the new shot's motion
        shot = self.shot
        if shot.picked:
            return out
        if t - shot.start >= SETTLE_S - 1e-6:
            shot.picked, shot.buffer = True, []
            out.append(payload)
        else:
            shot.buffer.append((t, payload))
        return out

    def finish(self) -> list[T]:
        """The pick of the last shot when it ended before :data:`SETTLE_S`."""
        out = self._close()
        self.shot = None
        return out

    def _close(self) -> list[T]:
        shot = self.shot
        if shot is None or shot.picked or not shot.buffer:
            return []
        return [shot.buffer[len(shot.buffer) // 2][1]]


# --- --crop-bars ----------------------------------------------------------------------------------

BAR_LEVEL = 20  # a bar's rows (columns) have a mean grey level at most this, 0-255, in every sample
BAR_SAMPLES = 24  # frames sampled over the film


class BarMeter:
    """The brightest each row and column has been, on average across its width (height), over the
    grey frames seen; :meth:`box` is the picture inside the dark edges.

    >>> import numpy as np
    >>> frame = np.zeros((48, 64), np.uint8); frame[6:42] = 200
    >>> meter = BarMeter(); meter.add(frame); meter.box()
    (0, 6, 64, 42)
    """

    def __init__(self, level: int = BAR_LEVEL):
        self.level = level
        self.rows: np.ndarray | None = None
        self.cols: np.ndarray | None = None
        self.samples = 0

    def add(self, grey: np.ndarray) -> None:
        """Take one grey frame (H, W) uint8; frames of another size than the first are ignored."""
        rows, cols = grey.mean(axis=1), grey.mean(axis=0)
        if self.rows is None or self.cols is None:
            self.rows, self.cols = rows, cols
        elif rows.shape == self.rows.shape and cols.shape == self.cols.shape:
            np.maximum(self.rows, rows, out=self.rows)
            np.maximum(self.cols, cols, out=self.cols)
        else:
            return
        self.samples += 1

    def box(self) -> tuple[int, int, int, int] | None:
        """``(left, top, right, bottom)`` of the picture (Pillow's crop box), or None when no
        frame was seen or the whole frame stayed dark (a black film has no bars to crop)."""
        if self.rows is None or self.cols is None:
            return None
        top, bottom = _inside(self.rows > self.level)
        left, right = _inside(self.cols > self.level)
        if bottom <= top or right <= left:
            return None
        return left, top, right, bottom


def _inside(lit: np.ndarray) -> tuple[int, int]:
    """First and one-past-last lit index (only the dark runs at the two ends are bars)."""
    idx = np.flatnonzero(lit)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)


def bar_box(
    frames: Iterable[np.ndarray], level: int = BAR_LEVEL
) -> tuple[int, int, int, int] | None:
    """:meth:`BarMeter.box` over ``frames`` (grey (H, W) uint8)."""
    meter = BarMeter(level)
    for grey in frames:
        meter.add(grey)
    return meter.box()


# --- --dedupe -------------------------------------------------------------------------------------


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash of an RGB (H, W, 3) uint8 image: shrink to 9x8 grey (box filter),
    then one bit per horizontally adjacent pair, set where the left pixel is brighter.

    Near-identical images (re-encodes, a frozen frame, a small change of size) differ in a few bits;
    unrelated ones in about 32.
    """
    from PIL import Image

    grey = np.asarray(Image.fromarray(rgb).convert("L").resize((9, 8), Image.Resampling.BOX))
    bits = (grey[:, :-1] > grey[:, 1:]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, others: np.ndarray) -> np.ndarray:
    """Bit differences between hash ``a`` and each of ``others`` (uint64 array)."""
    x = np.bitwise_xor(others, np.uint64(a))
    return np.unpackbits(x.view(np.uint8)).reshape(-1, 64).sum(axis=1)


class Repeats:
    """Remembers kept hashes; :meth:`seen` says whether a hash is within ``threshold`` bits of one
    of them (a near-repeat), and keeps it when not.

    >>> r = Repeats(4)
    >>> r.seen(0b1111), r.seen(0b0111), r.seen(0xFFFF_0000)
    (False, True, False)
    """

    def __init__(self, threshold: int):
        if not 0 <= threshold <= 64:
            raise ValueError(f"threshold must be 0 to 64 bits, not {threshold!r}")
        self.threshold = threshold
        self.kept = np.zeros(64, np.uint64)
        self.n = 0

    def seen(self, h: int) -> bool:
        if self.n and int(hamming(h, self.kept[: self.n]).min()) <= self.threshold:
            return True
        if self.n == len(self.kept):
            self.kept = np.concatenate([self.kept, np.zeros_like(self.kept)])
        self.kept[self.n] = h
        self.n += 1
        return False
