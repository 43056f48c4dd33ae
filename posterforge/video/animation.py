"""Animated GIF and WebP outputs: the frames of a video written as an animation.

The frames go through the same resumable segments as a video (:mod:`posterforge.video.segments`),
encoded losslessly (RGB H.264 at qp 0, :data:`~posterforge.video.containers.LOSSLESS_VCODEC`), so a
killed run resumes; at the end the segments are decoded, exactly, and saved with Pillow's animated
save into a temp file beside the output, which is renamed onto it.

Frame timing: every frame keeps its start time, counted in the format's unit (GIF: 1/100 s,
WebP: 1/1000 s). Each duration is the difference of rounded start times, so the total length
stays exact and no error adds up (24 fps in a GIF: 40, 40, 50 ms, ...). A GIF holds 256 colours
per frame (Pillow picks each frame's palette); an animated WebP is written lossless. Pillow
merges a GIF frame identical to the one before it into that frame (their durations summed).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from posterforge.atomic import create_temp, fsync_file
from posterforge.errors import PosterforgeError
from posterforge.video.containers import ANIMATIONS

# the decoded frames of an animation are held in memory until Pillow saves them
MAX_BYTES = 1 << 30
UNIT_MS = {"GIF": 10, "WEBP": 1}  # the time unit each format counts in


def check_options(dest: Path, vcodec: str | None, crf: int | None) -> None:
    """One line when an animation is asked for with a video encoder's options."""
    if vcodec is not None or crf is not None:
        raise PosterforgeError(
            f"--out {dest}: an animated {dest.suffix[1:].upper()} has no --vcodec or --crf "
            "(leave them out, or write a video)"
        )


def check_size(frames: int, width: int, height: int, dest: Path) -> None:
    """One line, before any work, when ``frames`` of ``width`` x ``height`` would not fit the
    memory an animation is assembled in."""
    need = frames * width * height * 3
    if need > MAX_BYTES:
        fit = max(1, MAX_BYTES // max(1, width * height * 3))
        raise PosterforgeError(
            f"--out {dest}: {frames} frames of {width}x{height} need {need / 2**30:.1f} GiB "
            f"as an animation (at most {MAX_BYTES / 2**30:.0f} GiB: {fit} frames at this size); "
            "write a video (.mp4, .webm) instead"
        )


def durations_ms(starts: Sequence[Fraction], end: Fraction, fmt: str) -> list[int]:
    """Each frame's duration in ms, from the frames' start times and the end of the last one
    (seconds), rounded in the format's unit without adding up error."""
    unit = Fraction(UNIT_MS[fmt], 1000)
    t0 = starts[0] if starts else Fraction(0)
    ticks = [round((t - t0) / unit) for t in [*starts, end]]
    return [(b - a) * UNIT_MS[fmt] for a, b in itertools.pairwise(ticks)]


def write_animation(segments: Sequence[Path], dest: Path) -> int:
    """Decode the lossless ``segments`` in order and save their frames as the animation
    ``dest`` (GIF or WebP by its suffix), atomically. Returns the frames written."""
    from PIL import Image

    fmt = ANIMATIONS[dest.suffix.lower()]
    images: list[Image.Image] = []
    starts: list[Fraction] = []
    end = Fraction(0)
    offset = Fraction(0)
    for path in segments:
        pictures, times, seg_end = _decode(path)
        if starts and times and times[0] + offset < end:  # a segment's container moved its start
            offset = end - times[0]
        images += pictures
        starts += [t + offset for t in times]
        end = max(end, seg_end + offset)
    if not images:
        raise PosterforgeError(f"{dest}: no frame to write")
    durations = durations_ms(starts, end, fmt)
    options = {"lossless": True, "method": 4} if fmt == "WEBP" else {"disposal": 1}
    fd, tmp = create_temp(dest)
    os.close(fd)
    try:
        images[0].save(
            tmp, format=fmt, save_all=True, append_images=images[1:], duration=durations,
            loop=0, **options,
        )  # fmt: skip
        fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(images)


def _decode(path: Path) -> tuple[list, list[Fraction], Fraction]:
    """The frames of one segment as RGB pictures, their start times in seconds, and the end of
    the last frame (from the packets' durations, which the segment's encoder set)."""
    import av
    from PIL import Image

    with av.open(str(path)) as seg:
        stream = seg.streams.video[0]
        tb = stream.time_base
        packets = [(p.pts, p.duration or 0) for p in seg.demux(stream) if p.size]
        packets = [(pts, d) for pts, d in packets if pts is not None]
    with av.open(str(path)) as seg:
        frames = [
            (f.pts, Image.fromarray(f.to_ndarray(format="rgb24"))) for f in seg.decode(video=0)
        ]
    frames.sort(key=lambda pf: pf[0])
    times = [Fraction(pts) * tb for pts, _ in frames]
    end = max((Fraction(pts + d) * tb for pts, d in packets), default=Fraction(0))
    if times and end <= times[-1]:  # no durations: the last frame lasts as long as the one before
        step = times[-1] - times[-2] if len(times) > 1 else Fraction(1, 10)
        end = times[-1] + step
    return [im for _, im in frames], times, end
