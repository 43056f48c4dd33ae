"""``--out clip-vintage.mp4``: an output that names one video file rather than a folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from posterforge.errors import PosterforgeError
from posterforge.inputs import Job
from posterforge.video.containers import ANIMATIONS, MUXERS, is_video


def plan_file(
    inputs: Sequence[str | Path], out: Path, *, strict: bool = True
) -> list[tuple[Job, Path]]:
    """The one (input, output) pair of a run whose ``--out`` names a video file; raises
    :class:`PosterforgeError` unless the input is exactly one video file and ``out`` can be
    written as one."""
    if len(inputs) != 1 or (isinstance(inputs[0], str) and inputs[0] == "-"):
        raise PosterforgeError(
            f"--out {out} names one video file: give exactly one video as input, or make --out "
            "a folder"
        )
    src = Path(inputs[0])
    if not os.path.lexists(src):
        raise PosterforgeError(f"{src}: no such file or folder")
    if src.is_dir():
        raise PosterforgeError(
            f"--out {out} names one video file, but {src} is a folder: make --out a folder"
        )
    if not is_video(src):
        what = "an animation" if out.suffix.lower() in ANIMATIONS else "a video file"
        raise PosterforgeError(
            f"{src}: not a video (nor an animated GIF or APNG), and --out {out} names {what}"
        )
    if out.suffix.lower() not in MUXERS and out.suffix.lower() not in ANIMATIONS:
        known = " ".join(sorted({*MUXERS, *ANIMATIONS}))
        raise PosterforgeError(f"--out {out}: cannot write {out.suffix} videos; use one of {known}")
    parent = out.absolute().parent
    existing = next((p for p in (parent, *parent.parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        raise PosterforgeError(f"--out {out}: {existing} is a file, not a folder")
    try:
        same = out.exists() and os.path.samefile(src, out)
    except OSError:
        same = False
    if same or src.resolve() == out.resolve():
        raise PosterforgeError(f"--out {out} is the input itself: write to another file")
    return [(Job(src, PurePosixPath(src.name), video=True), out)]
