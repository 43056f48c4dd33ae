"""Which files are videos, which containers we write, and what a translated video is called.

No torch, and PyAV only inside :func:`holds_video` (``posterforge --help`` and image-only runs
never import it).

A video input is recognised by its container, not by its name alone: a file named on the command
line whose suffix is no image suffix is probed with PyAV, so ``clip`` or ``clip.bin`` holding an
MP4 is a video. A folder walk takes the files with a :data:`VIDEO_SUFFIXES` suffix (probing every
file of a folder would read all of them); each is opened when its turn comes, and one that holds
no video stream is reported then. An animated GIF or APNG (Pillow reads the header, one open
per ``.gif``/``.png``/``.apng`` file, also in a walk) is a video: its frames in, a video out
(``.mkv``, or the ``--out`` file named); a still one stays an image.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

# what a folder walk takes as video (any case); each is opened and checked when translated
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts",
        ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".mxf", ".nut",
    }
)  # fmt: skip
# the containers we write, by suffix: FFmpeg's muxer for each
MUXERS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".mts": "mpegts",
    ".m2ts": "mpegts",
}
# animations we write (Pillow's animated save, from lossless segments): suffix -> Pillow format
ANIMATIONS: dict[str, str] = {".gif": "GIF", ".webp": "WEBP"}
# the segments of an animation: lossless RGB H.264, decoded exactly for the final save
LOSSLESS_VCODEC = "libx264rgb"
# a video whose own container we do not write (.wmv, .mpg, no suffix, ...) becomes Matroska,
# which holds every codec and every audio and subtitle stream we copy
FALLBACK_SUFFIX = ".mkv"
DEFAULT_VCODEC = "libx264"
# containers that cannot hold H.264: their default codec
DEFAULT_VCODEC_FOR = {".webm": "libvpx-vp9"}

# images that may be animated: an animated one is a video (frames in, a video out). Not WebP:
# this FFmpeg does not decode animated WebP (Pillow reads its first frame, as an image)
ANIMATED_SUFFIXES: frozenset[str] = frozenset({".gif", ".png", ".apng"})

# FFmpeg reads still images through these demuxers too: a PNG is no video
_IMAGE_DEMUXERS = ("image2", "_pipe", "gif", "apng", "webp", "tiff", "bmp", "jpeg")


def output_suffix(suffix: str) -> str:
    """The suffix of a translated video: its own when we write that container, else ``.mkv``."""
    return suffix if suffix.lower() in MUXERS else FALLBACK_SUFFIX


def output_rel(rel: PurePosixPath) -> PurePosixPath:
    """``rel`` with the suffix its translation gets (see :func:`output_suffix`)."""
    return rel.with_suffix(output_suffix(rel.suffix))


def muxer_for(path: str | os.PathLike[str]) -> str:
    return MUXERS.get(Path(path).suffix.lower(), MUXERS[FALLBACK_SUFFIX])


def default_vcodec(dest: str | os.PathLike[str]) -> str:
    if is_animation(dest):
        return LOSSLESS_VCODEC
    return DEFAULT_VCODEC_FOR.get(Path(dest).suffix.lower(), DEFAULT_VCODEC)


def names_video_file(out: str | os.PathLike[str]) -> bool:
    """Whether ``--out`` names one video file (``clip-vintage.mp4``, or an animation:
    ``clip.gif``, ``clip.webp``) rather than a folder: its suffix is a video or animation suffix
    and no folder of that name exists."""
    suffix = Path(out).suffix.lower()
    return (suffix in VIDEO_SUFFIXES or suffix in ANIMATIONS) and not os.path.isdir(out)


def is_animation(dest: str | os.PathLike[str]) -> bool:
    """Whether ``dest`` is written as an animated GIF or WebP (:data:`ANIMATIONS`)."""
    return Path(dest).suffix.lower() in ANIMATIONS


def is_video(path: Path, *, probe: bool = True) -> bool:
    """Whether ``path`` is taken as a video: a video suffix, or (``probe``) an animated GIF or
    APNG (:func:`is_animated`), or a suffix that is no image suffix and a container that
    holds a video stream."""
    from posterforge.images import IMAGE_SUFFIXES

    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    if suffix in ANIMATED_SUFFIXES and probe:
        return is_animated(path)
    if suffix in IMAGE_SUFFIXES or not probe:
        return False
    return holds_video(path)


def is_animated(path: Path) -> bool:
    """Whether Pillow reads ``path`` as an image of more than one frame (an animated GIF or APNG),
    which is translated as a video; a still one, or one that does not open, is an image
    (and reported there). Reads the header (a GIF: up to its second frame), decodes no picture."""
    from PIL import Image

    from posterforge.images import quiet_bombs

    quiet_bombs()
    try:
        if not path.is_file():  # a FIFO would block the open until a writer came
            return False
        with Image.open(path) as im:
            return bool(getattr(im, "is_animated", False))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def holds_video(path: Path) -> bool:
    """Whether FFmpeg opens ``path`` as a container with a video stream (not as a still image).
    Reads the header only; False for anything that cannot be opened (a missing file, a folder,
    text), which then goes down the image path and is reported there."""
    try:
        if not path.is_file():
            return False
    except OSError:
        return False
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            name = container.format.name
            if any(part in name for part in _IMAGE_DEMUXERS):
                return False
            return bool(container.streams.video)
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return False
