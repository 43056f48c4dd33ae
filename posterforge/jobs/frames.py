"""The job of ``posterforge frames``: which films, where to, and what to cut from each.

:class:`FrameOptions` is what decides the frames a film gives (what a re-run compares);
:class:`FramesJob` adds the films, the output folder and ``overwrite``. Both are checked once,
when made, each problem one line naming the option as the command line spells it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, get_args

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import about, at_least, in_range

FrameMode = Literal["every", "keyframes", "scenes"]
FrameFormat = Literal["png", "jpg", "webp"]
MODES: tuple[str, ...] = get_args(FrameMode)
FRAME_FORMATS: tuple[str, ...] = get_args(FrameFormat)
MAX_SIDE = 16384
# mean absolute difference, 0-1, above which a change can be a cut: 15/255, the floor of
# PySceneDetect's adaptive detector (the cut detector's ratio does most of the work); here, not
# in posterforge.video.picks, so that the job (and ``--help``) import no numpy
SCENE_THRESHOLD = 0.06
# who finds the cuts of --scenes: PySceneDetect's adaptive detector (the video-metrics extra),
# or, where it is not installed, our numpy copy of its rule (posterforge.video.picks); both find
# the same cuts on the test clips and the demo clip (bench/scene_cuts.py)
PYSCENEDETECT, OURS = "pyscenedetect-adaptive", "posterforge"


def scene_detector() -> str:
    """The cut detector ``--scenes`` uses here (a setting of the frames it gives)."""
    import importlib.util

    return PYSCENEDETECT if importlib.util.find_spec("scenedetect") else OURS


def parse_size(text: str) -> tuple[int, int] | int:
    """``N`` (the shorter side, aspect kept) or ``WxH`` (cover it, then centre-crop)."""
    if m := re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text):
        w, h = int(m[1]), int(m[2])
        if 0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE:
            return w, h
    elif (m := re.fullmatch(r"\s*(\d+)\s*", text)) and 0 < int(m[1]) <= MAX_SIDE:
        return int(m[1])
    raise PosterforgeError(
        f"invalid --size {text!r}: use N (shorter side) or WxH, e.g. 256x256, at most {MAX_SIDE}"
    )


@dataclass(frozen=True)
class FrameOptions:
    """What to cut from each film. ``mode``: ``every`` (one frame per ``every`` seconds),
    ``keyframes`` or ``scenes`` (one frame per shot, a cut being a change over
    ``scene_threshold``)."""

    mode: FrameMode = about(
        "every (one frame per `every` seconds), keyframes (only the key frames: fast, nothing "
        "else decodes) or scenes (one frame per shot, 0.5 s after each cut).",
        "every",
    )
    every: float = about(
        "With mode every: one frame per this many seconds, the first at or after each multiple.",
        1.0,
    )
    scene_threshold: float = about(
        "With mode scenes: the change between frames that counts as a cut, 0-1 (lower finds "
        "more cuts).",
        SCENE_THRESHOLD,
    )
    size: str | None = about(
        "Resize after --crop-bars: N (shorter side) or WxH (cover, then centre-crop).", None
    )
    crop_bars: bool = about("Crop the black letterbox/pillarbox bars of each film.", False)
    dedupe: int | None = about(
        "Drop a frame within THRESHOLD bits (0-64) of the 64-bit dHash of a frame kept from the "
        "same film (4-10 drops near-repeats).",
        None,
    )
    max_frames: int | None = about("At most N frames per film.", None)
    fmt: FrameFormat = about("png, jpg or webp.", "png")
    quality: int = about("JPEG and WebP quality, 1-100.", 95)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`PosterforgeError` (one line) for settings that cannot work."""
        if self.mode not in MODES:
            raise PosterforgeError(f"invalid mode {self.mode!r}: use {', '.join(MODES)}")
        if not (math.isfinite(self.every) and self.every > 0):
            raise PosterforgeError(f"invalid --every {self.every}: use a number of seconds > 0")
        if not 0 < self.scene_threshold < 1:
            raise PosterforgeError(
                f"invalid --scene-threshold {self.scene_threshold}: use a number between 0 and 1"
            )
        if self.size is not None:
            parse_size(self.size)
        if self.dedupe is not None and not 0 <= self.dedupe <= 64:
            raise PosterforgeError(f"invalid --dedupe {self.dedupe}: use 0 to 64 (bits)")
        at_least(self.max_frames, 1, "--max")
        if self.fmt not in FRAME_FORMATS:
            raise PosterforgeError(f"invalid --format {self.fmt!r}: use {', '.join(FRAME_FORMATS)}")
        in_range(self.quality, 1, 100, "--quality")

    @property
    def resize(self) -> tuple[int, int] | int | None:
        """``size`` parsed: N, (W, H), or None."""
        return None if self.size is None else parse_size(self.size)

    def settings(self) -> dict[str, Any]:
        """The settings that decide which frames a film gives and how they look (what a re-run
        compares); a setting that does not apply to the mode or format is left out."""
        s: dict[str, Any] = {"mode": self.mode}
        if self.mode == "every":
            s["every"] = self.every
        if self.mode == "scenes":
            s["scene_threshold"] = self.scene_threshold
            if (detector := scene_detector()) != OURS:  # a manifest without it: ours made it
                s["cuts"] = detector
        s.update(size=self.size, crop_bars=self.crop_bars, dedupe=self.dedupe)
        s.update(max=self.max_frames, format=self.fmt)
        if self.fmt in ("jpg", "webp"):
            s["quality"] = self.quality
        return s


@dataclass(frozen=True, kw_only=True)
class FramesJob(FrameOptions):
    """One run of ``posterforge frames``: :class:`FrameOptions` for ``films`` (paths, given
    once each) into the folder ``out``; ``overwrite`` cuts again films cut with other settings.

    >>> job = FramesJob(films=["a.mkv"], out="frames/a", mode="scenes")
    >>> [str(f) for f in job.films], job.settings()["mode"]
    (['a.mkv'], 'scenes')
    """

    films: tuple[Path, ...] = about("Video files (anything FFmpeg reads).")
    out: Path = about(
        "Output folder: OUT/FILM/FILM_00h01m02s345.png per frame, and OUT/frames.jsonl."
    )
    overwrite: bool = about(
        "Cut films again whose frames exist (their old frames are removed).", False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "films", tuple(Path(f) for f in self.films))
        object.__setattr__(self, "out", Path(self.out))
        if not self.films:
            raise PosterforgeError("no films given")
        if self.out.exists() and not self.out.is_dir():
            raise PosterforgeError(f"--out {self.out}: not a folder")


class FrameSettings(TypedDict, total=False):
    """The keywords of :func:`posterforge.api.frames`: the fields of :class:`FramesJob` besides
    ``films`` and ``out``."""

    mode: FrameMode
    every: float
    scene_threshold: float
    size: str | None
    crop_bars: bool
    dedupe: int | None
    max_frames: int | None
    fmt: FrameFormat
    quality: int
    overwrite: bool
