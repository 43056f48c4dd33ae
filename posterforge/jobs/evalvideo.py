"""The ``eval-video`` job: how much flicker a translation of a clip added, measured against the
clip itself (both videos or folders of frames), checked once when it is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import about
from posterforge.jobs.frames import SCENE_THRESHOLD


@dataclass(frozen=True)
class EvalVideoJob:
    """Measure the temporal consistency of ``translated`` against ``original`` (the clip it was
    translated from, frame for frame): the flow-warped error of both, per shot, with shot cuts
    found in ``original`` at ``scene_threshold``."""

    original: Path = about("The input clip: a video file or a folder of frames.")
    translated: Path = about("Its translation: a video or a folder, frame for frame.")
    scene_threshold: float = about(
        "The change between frames that counts as a cut, 0-1 (as frames --scenes).",
        SCENE_THRESHOLD,
    )

    def __post_init__(self) -> None:
        for name in ("original", "translated"):
            path = Path(getattr(self, name))
            object.__setattr__(self, name, path)
            if not path.exists():
                raise PosterforgeError(f"{path}: no such file or folder")
        if not 0 < self.scene_threshold < 1:
            raise PosterforgeError(
                f"invalid --scene-threshold {self.scene_threshold}: use a number between 0 and 1"
            )
