"""Colour tags of translated video (issue 23): the output is tagged with the matrix, range,
primaries and transfer its pixels are in; RGB input becomes BT.709 YUV tagged so; HDR (PQ, HLG)
is refused in one line, by ``translate`` and ``frames`` alike. Clips made here with PyAV, tiny."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posterforge.video.colour import to_rgb, to_yuv, written_tags

from .test_video import run

av = pytest.importorskip("av")


def clip(path: Path, codec: str, pix_fmt: str, **tags: int) -> Path:
    """Six 32x24 frames of a gradient, stored as ``pix_fmt`` and tagged (stream and frames)."""
    w, h = 32, 24
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=12)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        for k, v in tags.items():
            setattr(s.codec_context, k, v)
        y, x = np.mgrid[0:h, 0:w]
        for i in range(6):
            rgb = np.stack([(x * 7 + i * 9) % 256, y * 9, (x + y) * 3], -1).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            for k, v in tags.items():
                setattr(frame, k, v)
            frame.pts = i
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def tags_of(path: Path) -> dict[str, object]:
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return {
            "pix_fmt": f.format.name,
            "range": int(f.color_range),
            "matrix": int(f.colorspace),
            "primaries": int(f.color_primaries),
            "transfer": int(f.color_trc),
        }


def test_limited_bt709_is_kept_and_an_untagged_range_is_tagged_as_written(tiny_style, tmp_path):
    src = clip(tmp_path / "tv.mkv", "libx264", "yuv420p", color_range=1, colorspace=1,
               color_primaries=1, color_trc=1)  # fmt: skip
    [rec] = run(tiny_style, [src], tmp_path / "out")
    assert rec.status == "ok", rec.error
    want = {"pix_fmt": "yuv420p", "range": 1, "matrix": 1, "primaries": 1, "transfer": 1}
    assert tags_of(Path(rec.output)) == want
    untagged = clip(tmp_path / "plain.mp4", "libx264", "yuv420p")
    assert tags_of(untagged)["range"] == 0
    [rec] = run(tiny_style, [untagged], tmp_path / "out")
    got = tags_of(Path(rec.output))  # written limited BT.601 (what swscale assumes): so tagged
    assert (got["range"], got["matrix"]) == (1, 6)


def test_rgb_input_becomes_bt709_limited_yuv_tagged_so(tiny_style, tmp_path):
    """Before: yuvj420p tagged ``color_space=gbr`` (RGB) over YUV pixels."""
    src = clip(tmp_path / "rgb.mkv", "ffv1", "bgr0", color_range=2, colorspace=0,
               color_primaries=1, color_trc=13)  # fmt: skip
    assert tags_of(src)["matrix"] == 0
    [rec] = run(tiny_style, [src], tmp_path / "out")
    assert rec.status == "ok", rec.error
    got = tags_of(Path(rec.output))
    assert got == {"pix_fmt": "yuv420p", "range": 1, "matrix": 1, "primaries": 1, "transfer": 13}


@pytest.mark.parametrize(
    ("matrix", "rng"), [(0, 2), (1, 1), (1, 2), (5, 1), (9, 1), (2, 0), (8, 1)]
)
def test_the_tags_written_are_those_the_pixels_decode_back_with(matrix, rng):
    """RGB through :func:`to_yuv` with the written tags, read back by a decoder that trusts the
    tags (:func:`to_rgb`): the picture comes back (4:2:0 on a smooth image: a few levels)."""
    y, x = np.mgrid[0:32, 0:48]
    rgb = np.stack([x * 5, y * 7, 255 - x * 4], -1).clip(0, 255).astype(np.uint8)
    space, written = written_tags(matrix, rng)
    frame = to_yuv(rgb, space, written)
    frame.colorspace, frame.color_range = space, written
    back = to_rgb(frame)
    assert np.abs(back.astype(int) - rgb).mean() < 3, (space, written)


def test_hdr_is_refused_in_one_line_by_translate_and_frames(inproc, tiny_style, tmp_path):
    """Before: 8-bit SDR-range pixels still tagged bt2020 / smpte2084."""
    src = clip(tmp_path / "hdr.mkv", "ffv1", "yuv420p10le", color_range=1, colorspace=9,
               color_primaries=9, color_trc=16)  # fmt: skip
    common = ["--style", str(tiny_style), "--device", "cpu", "--compile", "off"]
    r = inproc("translate", str(src), "--out", str(tmp_path / "o.mkv"), *common)
    assert r.code != 0 and "Traceback" not in r.err
    [line] = [x for x in r.err.splitlines() if "HDR" in x]
    assert str(src) in line and "PQ (SMPTE ST 2084)" in line and "tone-map" in line
    assert not (tmp_path / "o.mkv").exists()
    r = inproc("frames", str(src), "--out", str(tmp_path / "frames"))
    assert r.code != 0 and "Traceback" not in r.err
    assert r.err.splitlines() == [
        f"posterforge: error: {src}: HDR video (PQ (SMPTE ST 2084) transfer) is not supported: "
        "the models see 8-bit SDR pictures; tone-map it to SDR first (ffmpeg -vf zscale=t=linear,"
        "tonemap=hable,zscale=p=bt709:t=bt709:m=bt709,format=yuv420p)"
    ]
