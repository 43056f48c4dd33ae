"""Animated GIF and WebP out (issue 23: "frames in, a video or an animated GIF/WebP out"):
``translate clip --out x.gif`` / ``x.webp`` keeps every frame and its duration (in the format's
unit, without drift), writes atomically, and refuses bad combinations in one line."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from posterforge.video.animation import durations_ms

from .test_video import frames_of, make_clip, run
from .test_video_animated import animation

av = pytest.importorskip("av")


def read_animation(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with Image.open(path) as im:
        frames = [(np.asarray(f.convert("RGB")), f.info["duration"])
                  for f in ImageSequence.Iterator(im)]  # fmt: skip
    return [f for f, _ in frames], [d for _, d in frames]


def test_durations_round_in_the_formats_unit_without_drift():
    starts = [Fraction(i, 24) for i in range(24)]
    gif = durations_ms(starts, Fraction(1), "GIF")
    assert sum(gif) == 1000 and set(gif) == {40, 50}
    assert sum(durations_ms(starts, Fraction(1), "WEBP")) == 1000
    assert durations_ms([Fraction(0), Fraction(3, 10)], Fraction(1, 2), "GIF") == [300, 200]


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_a_gif_translated_into_an_animation_keeps_its_frames_and_durations(
    inproc, tiny_style, tmp_path, suffix
):
    src = animation(tmp_path / "a.gif")  # six frames of 100 ms
    dest = tmp_path / f"out{suffix}"
    common = ["--style", str(tiny_style), "--device", "cpu", "--compile", "off"]
    r = inproc("translate", str(src), "--out", str(dest), *common, "--precision", "fp32")
    assert r.code == 0, r.err
    frames, durations = read_animation(dest)
    assert len(frames) == 6 and durations == [100] * 6
    assert frames[0].shape == (24, 32, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.gif", dest.name, ".posterforge-outputs.json"]
    )  # no work folder, no temp file


@pytest.mark.slow
def test_a_webp_from_a_video_is_lossless_and_keeps_24_fps(tiny_style, tmp_path):
    src = make_clip(tmp_path / "c.mp4", frames=12, fps=24, audio=True)
    (rec,) = run(tiny_style, [src], tmp_path / "c.webp")
    assert rec.status == "ok", rec.error
    frames, durations = read_animation(tmp_path / "c.webp")
    assert len(frames) == 12 and sum(durations) == 500 and set(durations) <= {41, 42}
    run(tiny_style, [src], tmp_path / "c.mkv", crf=0)  # the same frames in 4:2:0 video
    luma = np.array([0.299, 0.587, 0.114])
    first = frames_of(tmp_path / "c.mkv")[0][0] @ luma  # chroma is subsampled there: luma only
    assert np.abs(first - frames[0] @ luma).mean() < 3


def test_bad_combinations_are_one_line(inproc, tiny_style, tmp_path):
    still = tmp_path / "still.png"
    Image.new("RGB", (16, 16), (9, 9, 9)).save(still)
    clip = animation(tmp_path / "a.gif")
    common = ["--style", str(tiny_style), "--device", "cpu"]
    cases = [
        ([str(still), "--out", str(tmp_path / "o.gif")], "not a video (nor an animated GIF"),
        ([str(clip), "--out", str(tmp_path / "o.webp"), "--crf", "10"],
         "an animated WEBP has no --vcodec or --crf"),
        ([str(clip), "--out", str(tmp_path / "o.gif"), "--vcodec", "libx264"],
         "an animated GIF has no --vcodec or --crf"),
    ]  # fmt: skip
    for args, line in cases:
        r = inproc("translate", *args, *common)
        assert r.code != 0 and line in r.err, r.err
        assert len(r.err.strip().splitlines()) == 1, r.err
    assert not (tmp_path / "o.gif").exists() and not (tmp_path / "o.webp").exists()
