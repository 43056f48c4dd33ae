"""The one translate runner (posterforge/runner.py): images and videos are two sinks under one
outputs record, one skip rule and one order of work."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from posterforge.errors import PosterforgeError
from posterforge.outputs import RECORD
from posterforge.video.records import VideoRecord

from .test_video import leftovers, make_clip, run


def _mixed(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (20, 10), "red").save(src / "a.png")
    make_clip(src / "shot.mkv", frames=4)
    return src


def test_a_rerun_skips_images_and_videos_alike_under_one_record(tiny_style, tmp_path):
    src, out = _mixed(tmp_path), tmp_path / "out"
    assert {r.status for r in run(tiny_style, [src], out)} == {"ok"}
    recorded = json.loads((out / RECORD).read_text())["files"]
    assert set(recorded) == {"a.png", "shot.mkv"}
    again = {r.input: r for r in run(tiny_style, [src], out)}
    image, video = again[str(src / "a.png")], again[str(src / "shot.mkv")]
    assert (image.status, image.error) == ("skipped", "output exists (use --overwrite)")
    assert (video.status, video.error) == ("skipped", "output exists (use --overwrite)")
    assert isinstance(video, VideoRecord) and not isinstance(image, VideoRecord)
    assert leftovers(out) == []


def test_every_sink_is_reserved_before_any_work(tiny_style, tmp_path):
    """A video made with other settings is refused before the images are translated."""
    src, out = _mixed(tmp_path), tmp_path / "out"
    run(tiny_style, [src], out, crf=30)
    (out / "a.png").unlink()
    with pytest.raises(PosterforgeError, match=r"shot\.mkv"):
        run(tiny_style, [src], out, crf=20)
    assert not (out / "a.png").exists()


def test_a_symlinked_folder_cannot_send_a_video_outside_out(tiny_style, tmp_path):
    """The skip rule is the runner's: what holds for images holds for videos."""
    src = tmp_path / "in"
    make_clip(src / "sub" / "shot.mkv", frames=4)
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    (rec,) = run(tiny_style, [src], out)
    assert isinstance(rec, VideoRecord) and rec.status == "failed" and rec.output is None
    assert rec.error.startswith(f"cannot write {out / 'sub' / 'shot.mkv'}: its folder leads to")
    assert "outside the output folder" in rec.error and "\n" not in rec.error
    assert list(elsewhere.iterdir()) == []


def test_a_video_another_run_holds_is_one_failed_line_and_left_alone(tiny_style, tmp_path):
    from posterforge.atomic import claim

    src, out = tmp_path / "in", tmp_path / "out"
    make_clip(src / "shot.mkv", frames=4)
    out.mkdir()
    held = claim(out / "shot.mkv")  # as another live run would
    assert held is not None
    try:
        (rec,) = run(tiny_style, [src], out)
    finally:
        held.release()
    assert isinstance(rec, VideoRecord) and rec.status == "failed"
    assert rec.error == "another run is translating it now; run again once it is done"
    assert not (out / "shot.mkv").exists()
