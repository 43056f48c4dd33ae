"""A clip read frame by frame, whether a video file or a folder of frames (sorted by name), as RGB
``(H, W, 3)`` uint8 arrays: what ``eval-video`` compares. Streams: one frame in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from posterforge.errors import PosterforgeError

FOLDER_FPS = Fraction(24)  # a folder of frames has no rate: shot lengths count at this one


@dataclass(frozen=True)
class Clip:
    """``path``'s frames: ``size`` (W, H) as stored, ``frames`` (exact for a folder, the header's
    count or estimate for a video) and ``fps``."""

    path: Path
    size: tuple[int, int]
    frames: int
    fps: Fraction
    files: tuple[Path, ...] = field(default=(), repr=False)  # a folder's frames, in order

    @property
    def is_folder(self) -> bool:
        return bool(self.files)


def open_clip(path: str | Path) -> Clip:
    """Describe ``path`` (a video, or a folder of images); one line when it is neither."""
    path = Path(path)
    if path.is_dir():
        return _folder(path)
    if not path.exists():
        raise PosterforgeError(f"{path}: no such file or folder")
    from posterforge.video.io import probe

    info = probe(path)  # one line (VideoError) for a file that is no video
    return Clip(path, (info.width, info.height), info.frames, info.rate or Fraction(24))


def _folder(path: Path) -> Clip:
    from posterforge.images import IMAGE_SUFFIXES, probe_size

    files = tuple(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise PosterforgeError(f"{path}: no frames (images) in this folder")
    size = probe_size(files[0])
    if size is None:
        raise PosterforgeError(f"{files[0]}: not an image that can be read")
    return Clip(path, size, len(files), FOLDER_FPS, files)


def frames(clip: Clip) -> Iterator[np.ndarray]:
    """The clip's frames in order; one line for a frame of another size than the first."""
    if clip.is_folder:
        from posterforge.images import decode

        for f in clip.files:
            rgb = decode(f).rgb
            _check_size(clip, f, rgb)
            yield rgb
        return
    from posterforge.video.io import Damage, decode, open_input, video_stream

    with open_input(clip.path) as container:
        stream = video_stream(container, clip.path)
        stream.thread_type = "AUTO"
        for frame in decode(container, stream, Damage()):
            rgb = frame.to_ndarray(format="rgb24")
            _check_size(clip, clip.path, rgb)
            yield rgb


def _check_size(clip: Clip, where: Path, rgb: np.ndarray) -> None:
    h, w = rgb.shape[:2]
    if (w, h) != clip.size:
        raise PosterforgeError(
            f"{where}: a frame of {w}x{h} in a clip of {clip.size[0]}x{clip.size[1]}"
        )
