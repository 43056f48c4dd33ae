"""Small synthetic clips for tests and benches of video work (flicker, stabilisation, cuts).

Three shots, made in numpy and written with PyAV (a video) or Pillow (a folder of PNG frames):

- :func:`still`: one photo-like picture, unchanged, with fresh sensor noise in every frame;
- :func:`pan`: a window sliding slowly (``speed`` pixels a frame) across a wider picture;
- :func:`cut`: a still shot, then a hard cut to another picture that pans.

Each returns a list of RGB ``(H, W, 3)`` uint8 frames; :func:`write_video` and
:func:`write_frames` put them on disk, and ``transform`` (a function of the frame and its index)
stands in for a translator (identity, added noise) so that tests can make a "translated" clip
without a model. Everything is seeded: the same call makes the same frames.

    >>> frames = cut(n=8, at=4, size=(64, 48))
    >>> len(frames), frames[0].shape
    (8, (48, 64, 3))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

SIZE = (96, 64)  # (W, H): small enough for quick tests, big enough for optical flow
FPS = 12

Transform = Callable[[np.ndarray, int], np.ndarray]


def picture(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured RGB picture (float32, 0-255): sinusoids, soft blobs and fine grain,
    so that optical flow has structure to follow everywhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(2, 7), rng.uniform(2, 7), rng.uniform(0, 6.28)
        out[..., c] = 128 + 60 * np.sin(xx / w * fx * 2 + phase) * np.cos(yy / h * fy * 2)
    for _ in range(max(4, w * h // 600)):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 10)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        out += blob[..., None] * rng.uniform(-90, 90, 3)
    grain = rng.normal(0, 1, (h // 2 + 1, w // 2 + 1, 3)).repeat(2, 0).repeat(2, 1)[:h, :w]
    return np.clip(out + 12 * grain, 0, 255)


def _noisy(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    if sigma > 0:
        img = img + rng.normal(0, sigma, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def still(n: int = 12, size: tuple[int, int] = SIZE, noise: float = 3.0, seed: int = 0):
    """``n`` frames of one unchanged picture, each with its own sensor noise (sigma ``noise``)."""
    w, h = size
    base, rng = picture(w, h, seed), np.random.default_rng(seed + 1000)
    return [_noisy(base, noise, rng) for _ in range(n)]


def pan(
    n: int = 12,
    size: tuple[int, int] = SIZE,
    speed: float = 1.0,
    noise: float = 0.0,
    seed: int = 1,
) -> list[np.ndarray]:
    """``n`` frames of a window moving right by ``speed`` pixels a frame over a wider picture."""
    w, h = size
    reach = int(np.ceil(speed * n)) + 2
    wide, rng = picture(w + reach, h, seed), np.random.default_rng(seed + 1000)
    xs = np.arange(w, dtype=np.float32)
    frames = []
    for i in range(n):
        x = xs + speed * i  # sub-pixel shifts by linear interpolation along x
        x0 = np.floor(x).astype(int)
        f = (x - x0)[None, :, None]
        frames.append(_noisy(wide[:, x0] * (1 - f) + wide[:, x0 + 1] * f, noise, rng))
    return frames


def cut(
    n: int = 16, at: int = 8, size: tuple[int, int] = SIZE, noise: float = 2.0
) -> list[np.ndarray]:
    """A still shot of ``at`` frames, then a hard cut to a panning shot of another picture."""
    return still(at, size, noise, seed=2) + pan(n - at, size, 1.0, noise, seed=3)


def transformed(frames: Sequence[np.ndarray], transform: Transform | None) -> list[np.ndarray]:
    """``frames`` through ``transform(frame, index)`` (None: unchanged), as uint8."""
    if transform is None:
        return list(frames)
    return [np.clip(transform(f, i), 0, 255).astype(np.uint8) for i, f in enumerate(frames)]


def frame_noise(sigma: float, seed: int = 7) -> Transform:
    """A transform that adds fresh Gaussian noise of ``sigma`` grey levels to every frame: the
    flicker of a translator whose output changes from frame to frame where its input does not."""
    rng = np.random.default_rng(seed)
    return lambda f, i: f.astype(np.float32) + rng.normal(0, sigma, f.shape)


def write_video(
    frames: Sequence[np.ndarray],
    path: str | Path,
    fps: int = FPS,
    lossless: bool = True,
) -> Path:
    """``frames`` as an H.264 MP4/MKV (``lossless``: CRF 0 in yuv444p, so that what is decoded is
    the frames up to the RGB-YUV rounding; else CRF 18 yuv420p, as a camera file)."""
    import av

    path = Path(path)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        opts = {"crf": "0" if lossless else "18"}
        video = out.add_stream("libx264", rate=fps, options=opts)
        video.width, video.height = w, h
        video.pix_fmt = "yuv444p" if lossless else "yuv420p"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
    return path


def write_frames(frames: Sequence[np.ndarray], folder: str | Path) -> Path:
    """``frames`` as ``folder/000000.png``, ``000001.png``, ... (lossless)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames):
        Image.fromarray(rgb).save(folder / f"{i:06d}.png", compress_level=1)
    return folder
