"""``posterforge eval-video`` (issue 26): the flow-warped error of a translated clip against its
input, on the test clips of :mod:`posterforge.video.testclips` (tiny: 96x64, a dozen frames).

A "translation" here is a function of the frames (identity, added noise, a colour change), so the
answer is known without a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("scenedetect")

import posterforge
from posterforge.cli import main
from posterforge.errors import PosterforgeError
from posterforge.evaluation.flow import Flow, consistent
from posterforge.video import testclips as tc


def _pair(tmp_path: Path, frames, transform=None, name: str = "clip") -> tuple[Path, Path]:
    a = tc.write_frames(frames, tmp_path / name / "original")
    b = tc.write_frames(tc.transformed(frames, transform), tmp_path / name / "translated")
    return a, b


def _cli(capsys, *args) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_a_static_clip_through_an_identity_model_measures_zero(tmp_path):
    a, b = _pair(tmp_path, tc.still(8, noise=0.0))
    report = posterforge.evaluate_video(a, b)
    assert report.frames == 8 and report.pairs == 7 and report.cuts == []
    assert report.output == 0.0 and report.input == 0.0 and report.added == 0.0
    assert report.ratio is None  # nothing to compare with: a still, noiseless input


def test_identity_on_a_noisy_still_adds_no_flicker(tmp_path):
    a, b = _pair(tmp_path, tc.still(8, noise=3.0))
    report = posterforge.evaluate_video(a, b)
    assert report.input > 0  # the sensor noise: what the input alone gives
    assert report.output == report.input and report.ratio == 1.0


@pytest.mark.parametrize("clip", ["still", "pan"])
def test_the_measure_grows_with_per_frame_noise(tmp_path, clip):
    frames = tc.still(8, noise=2.0) if clip == "still" else tc.pan(8, speed=1.0)
    ratios, outputs = [], []
    for sigma in (0.0, 2.0, 6.0):
        a, b = _pair(tmp_path, frames, tc.frame_noise(sigma) if sigma else None, f"s{sigma}")
        report = posterforge.evaluate_video(a, b)
        ratios.append(report.ratio)
        outputs.append(report.output)
    assert outputs[0] < outputs[1] < outputs[2]
    assert ratios[0] == pytest.approx(1.0) and ratios[1] > 1.5 and ratios[2] > ratios[1]
    # noise of sigma s on [0, 255] adds about 2 s^2 / 255^2 to a squared difference of two frames
    assert outputs[2] - outputs[0] == pytest.approx(2 * 6.0**2 / 255**2, rel=0.25)


def test_forward_backward_consistency_masks_what_does_not_come_home():
    h, w = 20, 30
    back = np.zeros((h, w, 2), np.float32)
    back[..., 0] = -2.0  # each pixel of t was 2 px to its left in t - 1
    fwd = -back  # and comes back: consistent everywhere
    mask = consistent(back, fwd)
    assert not mask[:, :2].any()  # its source is outside frame t - 1
    assert mask[:, 2:].all()
    fwd[5:10, 10:20] = 0.0  # an occlusion: these do not come home
    mask = consistent(back, fwd)
    assert not mask[5:10, 12:22].any() and mask[12:, 2:].all()


def test_a_pan_masks_the_edge_it_uncovers():
    frames = tc.pan(2, speed=3.0)
    warp = Flow().warp(frames[0], frames[1])
    assert warp.mask[:, -2:].mean() < 0.2  # new picture comes in at the right: no source
    assert warp.mask[:, 10:-10].mean() > 0.9
    assert np.median(warp.back[..., 0][:, 10:-10]) == pytest.approx(3.0, abs=0.3)


def test_no_pair_is_measured_across_a_cut(tmp_path):
    frames = tc.cut(16, at=8)

    def brighter_second_shot(f, i):  # a colour change per shot: no flicker within either
        return f.astype(np.float32) + (30 if i >= 8 else 0)

    a, b = _pair(tmp_path, frames, brighter_second_shot)
    report = posterforge.evaluate_video(a, b)
    assert report.cuts == [8] and [(s.start, s.end) for s in report.shots] == [(0, 8), (8, 16)]
    assert report.pairs == 14  # 7 + 7: none spans the cut
    assert report.ratio == pytest.approx(1.0, abs=0.15)
    # with the cut not found, the pair across it is warped from another picture: a spike
    one_shot = posterforge.evaluate_video(a, b, scene_threshold=0.99)
    assert one_shot.cuts == [] and one_shot.pairs == 15
    assert one_shot.output > 3 * report.output


def test_videos_and_json_on_the_cli(tmp_path, capsys):
    frames = tc.cut(16, at=8)
    a = tc.write_video(frames, tmp_path / "clip.mkv")
    b = tc.write_video(tc.transformed(frames, tc.frame_noise(6.0)), tmp_path / "noisy.mkv")
    code, out, err = _cli(capsys, "eval-video", a, b, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["frames"] == 16 and data["cuts"] == [8] and data["ratio"] > 3
    assert [s["pairs"] for s in data["shots"]] == [7, 7]
    assert "16/16 frames" in err  # progress on stderr
    code, out, _ = _cli(capsys, "eval-video", a, b)
    assert code == 0 and "ratio" in out and "8-15" in out


def test_progress_counts_frames(tmp_path):
    a, b = _pair(tmp_path, tc.still(5))
    seen = []
    posterforge.evaluate_video(a, b, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 5) for i in range(1, 6)]


def test_bad_input_is_one_line(tmp_path, capsys):
    frames = tc.still(6)
    a, b = _pair(tmp_path, frames)
    short = tc.write_frames(frames[:5], tmp_path / "short")
    small = tc.write_frames(tc.still(6, size=(48, 32)), tmp_path / "small")
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    va = tc.write_video(frames, tmp_path / "a.mkv")
    vb = tc.write_video(frames[:4], tmp_path / "b.mkv")
    cases = {
        (a, short): "5 frames, but",
        (a, small): "frames of 48x32, but",
        (a, text): "notes.txt:",
        (a, tmp_path / "missing"): "no such file or folder",
        (va, vb): "4 frames, but",
        (tmp_path / "empty", a): "no frames",
    }
    (tmp_path / "empty").mkdir()
    for (x, y), words in cases.items():
        code, out, err = _cli(capsys, "eval-video", x, y)
        lines = [line for line in err.splitlines() if "error" in line]
        assert code != 0 and out == "" and len(lines) == 1 and words in lines[0], (x, y, err)
        assert "Traceback" not in err
    with pytest.raises(PosterforgeError, match="scene-threshold"):
        posterforge.evaluate_video(a, b, scene_threshold=1.5)


def test_without_the_extra_it_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    a, b = _pair(tmp_path, tc.still(3))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "cv2" else real(n))
    with pytest.raises(PosterforgeError, match=r"pip install 'posterforge\[video-metrics\]'"):
        posterforge.evaluate_video(a, b)


def test_the_clip_makers_doctests():
    import doctest

    assert doctest.testmod(tc).failed == 0
