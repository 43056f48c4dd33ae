"""Animated GIF and APNG are videos (issue 23): before, a named one was refused (``not a video,
and --out ... names a video file``) and an APNG into a folder failed (``suffix '.apng' names no
image format to write``). Frames in, a video out, their times kept; a still GIF stays an image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posterforge.video.containers import is_video

from .test_video import frames_of, run

av = pytest.importorskip("av")


def animation(path: Path, n: int = 6, fmt: str | None = None) -> Path:
    """``n`` flat 32x24 frames of different colours, 100 ms each (one frame: a still image)."""
    colours = [(i * 40, 255 - i * 30, 80) for i in range(n)]
    ims = [Image.fromarray(np.full((24, 32, 3), c, np.uint8)) for c in colours]
    extra = {"save_all": True, "append_images": ims[1:], "duration": 100} if n > 1 else {}
    ims[0].save(path, format=fmt, **extra)
    return path


@pytest.mark.parametrize(("name", "fmt"), [("a.gif", None), ("b.apng", "PNG"), ("c.png", "PNG")])
def test_an_animation_named_on_the_command_line_becomes_a_video(
    inproc, tiny_style, tmp_path, name, fmt
):
    src = animation(tmp_path / name, fmt=fmt)
    assert is_video(src)
    dest = tmp_path / "out.mp4"
    common = ["--style", str(tiny_style), "--device", "cpu", "--compile", "off"]
    r = inproc("translate", str(src), "--out", str(dest), *common)
    assert r.code == 0, r.err
    rgb, pts, about = frames_of(dest)
    assert len(rgb) == 6 and about["size"] == (32, 24)
    with av.open(str(dest)) as c:
        tb = c.streams.video[0].time_base
    assert [round(float((p - pts[0]) * tb), 3) for p in pts] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_a_folder_of_animations_and_a_still_gif(tiny_style, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    animation(src / "a.gif")
    animation(src / "b.apng", fmt="PNG")
    animation(src / "still.gif", n=1)
    assert not is_video(src / "still.gif")
    recs = {Path(r.input).name: r for r in run(tiny_style, [src], tmp_path / "out")}
    assert {k: (r.status, Path(r.output).name) for k, r in recs.items()} == {
        "a.gif": ("ok", "a.mkv"),
        "b.apng": ("ok", "b.mkv"),
        "still.gif": ("ok", "still.png"),
    }
    assert len(frames_of(tmp_path / "out" / "b.mkv")[0]) == 6
