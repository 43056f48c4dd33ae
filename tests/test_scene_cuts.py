"""Shot cuts (issue 26): PySceneDetect's adaptive detector, fed frame by frame
(:class:`posterforge.video.cuts.SceneCuts`), against our numpy rule (the fallback of
``frames --scenes`` without the video-metrics extra), on the project's test clips."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

pytest.importorskip("scenedetect")

from posterforge.jobs.frames import OURS, PYSCENEDETECT, FrameOptions, scene_detector
from posterforge.video import decoding
from posterforge.video import testclips as tc
from posterforge.video.cuts import WINDOW, SceneCuts
from posterforge.video.picks import THUMB, ShotPicker

FPS = 12
CLIPS = {
    "still": (tc.still(18, noise=3.0), []),
    "slow pan": (tc.pan(18, speed=1.0), []),
    "fast pan": (tc.pan(18, speed=6.0), []),
    "cut": (tc.cut(24, at=12), [12]),
}


def _scenedetect(frames) -> list[int]:
    cuts: SceneCuts[int] = SceneCuts(fps=FPS)
    out = [r for i, f in enumerate(frames) for r in cuts.feed(f, i)] + cuts.finish()
    assert [i for i, _ in out] == list(range(len(frames)))  # every frame, in order
    return [i for i, starts in out if starts and i]


def _ours(frames) -> list[int]:
    shots: ShotPicker[int] = ShotPicker()
    for i, f in enumerate(frames):
        thumb = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(
            width=THUMB[0], height=THUMB[1], format="rgb24", interpolation="AREA"
        )
        shots.feed(i / FPS, thumb.to_ndarray(), i)
    return [round(t * FPS) for t in shots.cuts[1:]]


@pytest.mark.parametrize("name", CLIPS)
def test_pyscenedetect_and_ours_find_the_true_cuts(name):
    frames, truth = CLIPS[name]
    assert _scenedetect(frames) == truth
    assert _ours(frames) == truth


def test_frames_come_back_a_window_late():
    cuts: SceneCuts[int] = SceneCuts(fps=FPS)
    frames = tc.still(WINDOW + 3)
    assert cuts.feed(frames[0], 0) == []
    ready = [len(cuts.feed(f, i)) for i, f in enumerate(frames[1:], 1)]
    assert ready == [0] * (WINDOW - 1) + [1] * (len(frames) - WINDOW)
    assert len(cuts.pending) == WINDOW and len(cuts.finish()) == WINDOW


@pytest.mark.parametrize("detector", [PYSCENEDETECT, OURS])
def test_frames_scenes_picks_the_same_with_either_detector(detector, monkeypatch):
    monkeypatch.setattr(decoding, "scene_detector", lambda: detector)
    frames = tc.cut(24, at=12)

    def decoded():
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            yield i / FPS, frame

    picks = [t for t, _ in decoding.picked(decoded(), FrameOptions(mode="scenes"), FPS)]
    assert picks == [0.5, 1.5]  # one per shot, 0.5 s (SETTLE_S) into it


def test_the_detector_is_a_setting_of_the_frames():
    settings = FrameOptions(mode="scenes").settings()
    assert scene_detector() == PYSCENEDETECT and settings["cuts"] == PYSCENEDETECT
    assert "cuts" not in FrameOptions(mode="every").settings()
