"""Optical flow between two frames and the warp it gives, with OpenCV (``opencv-python-headless``,
the ``video-metrics`` extra): DIS flow both ways, and the occlusion mask from their
forward-backward consistency (Sundaram et al. 2010, as Lai et al. 2018 use it).

Frames are RGB ``(H, W, 3)`` uint8 arrays; flows ``(H, W, 2)`` float32 in pixels (x, y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Forward-backward consistency: a pixel is kept where |F_b + F_f(x + F_b)|^2 is at most
# ALPHA * (|F_b|^2 + |F_f(x + F_b)|^2) + BETA (Sundaram et al.'s constants).
ALPHA, BETA = 0.01, 0.5


def _grey(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _sample(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``img`` read at ``x + flow(x)`` (bilinear; outside the frame: the border's value)."""
    import cv2

    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


@dataclass
class Warp:
    """How frame ``t - 1`` moves onto frame ``t``: ``back`` (for each pixel of ``t``, where it
    was in ``t - 1``) and ``mask`` (True where that is trusted: consistent both ways and inside
    the frame)."""

    back: np.ndarray  # (H, W, 2) float32
    mask: np.ndarray  # (H, W) bool

    def apply(self, prev: np.ndarray) -> np.ndarray:
        """``prev`` (frame ``t - 1``'s, (H, W, C) float32) moved onto frame ``t``."""
        return _sample(prev, self.back)


class Flow:
    """DIS optical flow (OpenCV's ``medium`` preset) on the grey frames, both ways."""

    name = "OpenCV DIS (medium), forward-backward occlusion mask"

    def __init__(self) -> None:
        import cv2

        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def warp(self, prev: np.ndarray, cur: np.ndarray) -> Warp:
        a, b = _grey(prev), _grey(cur)
        back = self.dis.calc(b, a, None)  # t -> t-1
        fwd = self.dis.calc(a, b, None)  # t-1 -> t
        return Warp(back, consistent(back, fwd))


def consistent(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Where following ``back`` then ``fwd`` comes home (no occlusion), and ``back`` stays inside
    the frame."""
    h, w = back.shape[:2]
    fwd_there = _sample(fwd, back)
    err = ((back + fwd_there) ** 2).sum(-1)
    bound = ALPHA * ((back**2).sum(-1) + (fwd_there**2).sum(-1)) + BETA
    xx, yy = np.meshgrid(np.arange(w), np.arange(h))
    x, y = xx + back[..., 0], yy + back[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return (err <= bound) & inside


def warped_error(prev: np.ndarray, cur: np.ndarray, warp: Warp) -> tuple[float, int]:
    """The sum of squared differences (RGB in [0, 1], averaged over the 3 channels) between
    ``cur`` and ``prev`` warped onto it, over the masked pixels, and their count."""
    p = prev.astype(np.float32) / 255.0
    c = cur.astype(np.float32) / 255.0
    diff = ((c - warp.apply(p)) ** 2).mean(-1)
    return float(diff[warp.mask].sum()), int(warp.mask.sum())
