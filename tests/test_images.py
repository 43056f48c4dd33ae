"""posterforge.images: decoding every mode, reporting every bad input, atomic encoding."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from posterforge.errors import PosterforgeError
from posterforge.images import (
    FORMATS,
    IMAGE_SUFFIXES,
    Decoded,
    ImageError,
    decode,
    encode_atomic,
    format_for,
    is_temp_file,
)


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)


def _save(im: Image.Image, path: Path, **kw: object) -> Path:
    im.save(path, **kw)
    return path


def _check_layout(d: Decoded, h: int, w: int) -> None:
    assert d.rgb.shape == (h, w, 3) and d.rgb.dtype == np.uint8
    assert d.rgb.flags.c_contiguous
    assert d.size == (w, h)
    if d.alpha is not None:
        assert d.alpha.shape == (h, w) and d.alpha.dtype == np.uint8
        assert d.alpha.flags.c_contiguous


# --- mode conversions ---------------------------------------------------------------------------


def test_rgb_png_exact(tmp_path: Path, rgb: np.ndarray) -> None:
    d = decode(_save(Image.fromarray(rgb), tmp_path / "a.png"))
    _check_layout(d, 6, 8)
    assert d.alpha is None
    np.testing.assert_array_equal(d.rgb, rgb)
    assert d.rgb.flags.writeable  # torch.from_numpy warns on read-only arrays


@pytest.mark.parametrize("mode", ["L", "1"])
def test_gray_and_bilevel_become_rgb(tmp_path: Path, mode: str) -> None:
    gray = np.array([[0, 255, 255], [255, 0, 0]], dtype=np.uint8)
    d = decode(_save(Image.fromarray(gray).convert(mode), tmp_path / "g.png"))
    _check_layout(d, 2, 3)
    assert d.alpha is None
    for c in range(3):
        np.testing.assert_array_equal(d.rgb[:, :, c], gray)


def test_palette_with_transparency_gives_alpha(tmp_path: Path) -> None:
    im = Image.new("P", (3, 2), 0)
    im.putpalette([255, 0, 0, 0, 255, 0])
    im.putpixel((1, 0), 1)
    im.info["transparency"] = 1
    d = decode(_save(im, tmp_path / "p.png"))
    _check_layout(d, 2, 3)
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, [[255, 0, 255], [255, 255, 255]])
    assert d.rgb[0, 0].tolist() == [255, 0, 0]


def test_palette_without_transparency_has_no_alpha(tmp_path: Path) -> None:
    im = Image.new("P", (3, 2), 0)
    im.putpalette([10, 20, 30])
    d = decode(_save(im, tmp_path / "p.png"))
    assert d.alpha is None
    assert d.rgb[1, 2].tolist() == [10, 20, 30]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_modes_keep_alpha(tmp_path: Path, rgb: np.ndarray, mode: str) -> None:
    a = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    im = Image.fromarray(np.dstack([rgb, a])).convert(mode)
    d = decode(_save(im, tmp_path / "a.png"))
    _check_layout(d, 6, 8)
    assert d.alpha is not None
    np.testing.assert_array_equal(d.alpha, a)
    if mode == "RGBA":
        np.testing.assert_array_equal(d.rgb, rgb)


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_cmyk_becomes_rgb(tmp_path: Path, rgb: np.ndarray, suffix: str) -> None:
    cmyk = Image.fromarray(rgb).convert("CMYK")
    path = _save(cmyk, tmp_path / f"c{suffix}")
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    d = decode(path)
    _check_layout(d, 6, 8)
    expected = np.asarray(cmyk.convert("RGB"), dtype=int)
    tolerance = 0 if suffix == ".tif" else 40  # JPEG is lossy
    assert np.abs(d.rgb.astype(int) - expected).max() <= tolerance


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_gray_is_scaled_not_clipped(tmp_path: Path, suffix: str) -> None:
    values = np.array([[0, 1, 128, 129, 257, 32768, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / f"g{suffix}")
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    d = decode(path)
    _check_layout(d, 1, 7)
    np.testing.assert_array_equal(d.rgb[:, :, 0], [[0, 0, 0, 1, 1, 128, 255]])
    np.testing.assert_array_equal(d.rgb[:, :, 0], d.rgb[:, :, 2])


def test_32_bit_int_mode_uses_16_bit_range(tmp_path: Path) -> None:
    values = np.array([[-7, 257, 65535, 1 << 20]], dtype=np.int32)
    d = decode(_save(Image.fromarray(values), tmp_path / "i.tif"))
    np.testing.assert_array_equal(d.rgb[:, :, 0], [[0, 1, 255, 255]])


def test_float_is_clipped(tmp_path: Path) -> None:
    values = np.array([[-5.0, 0.4, 100.6, 300.0, np.nan]], dtype=np.float32)
    d = decode(_save(Image.fromarray(values), tmp_path / "f.tif"))
    np.testing.assert_array_equal(d.rgb[:, :, 1], [[0, 0, 101, 255, 0]])


def test_multi_frame_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 3), c) for c in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    d = decode(path)
    _check_layout(d, 3, 4)
    assert d.rgb[0, 0].tolist() == [255, 0, 0]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (200, 10, 10))
    im.paste((10, 10, 200), (0, 0, 8, 8))  # mark the top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise to view
    d = decode(_save(im, tmp_path / "o.jpg", exif=exif.tobytes(), quality=95))
    _check_layout(d, 40, 20)
    assert d.size == (20, 40)
    assert d.rgb[2, -3, 2] > 150  # the marked corner is now top-right


# --- bad inputs ---------------------------------------------------------------------------------


def _fails(path: Path, reason: str, **kw: int) -> ImageError:
    with pytest.raises(ImageError) as info:
        decode(path, **kw)
    e = info.value
    assert isinstance(e, PosterforgeError)
    assert e.path == path and e.reason.startswith(reason)
    assert str(e) == f"{path}: {e.reason}" and "\n" not in str(e)
    return e


def test_missing_file(tmp_path: Path) -> None:
    _fails(tmp_path / "nope.png", "file not found")


def test_error_survives_pickling(tmp_path: Path) -> None:
    # decode may run in worker processes, which send errors back pickled
    e = _fails(tmp_path / "nope.png", "file not found")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is ImageError
    assert (back.path, back.reason, str(back)) == (e.path, e.reason, str(e))


def test_dangling_link(tmp_path: Path) -> None:
    link = tmp_path / "l.png"
    link.symlink_to(tmp_path / "gone.png")
    _fails(link, "dangling link")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    _fails(tmp_path / "d.png", "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.png").touch()
    _fails(tmp_path / "e.png", "empty file")


def test_text_named_png(tmp_path: Path) -> None:
    (tmp_path / "t.png").write_text("not really a picture\n")
    _fails(tmp_path / "t.png", "not an image")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated(tmp_path: Path, rgb: np.ndarray, suffix: str) -> None:
    whole = _save(Image.fromarray(rgb), tmp_path / f"whole{suffix}")
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    e = _fails(cut, "truncated or corrupt image")
    assert e.__cause__ is not None  # the Pillow error stays available for debugging


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores modes")
def test_unreadable(tmp_path: Path, rgb: np.ndarray) -> None:
    path = _save(Image.fromarray(rgb), tmp_path / "locked.png")
    path.chmod(0)
    try:
        _fails(path, "permission denied")
    finally:
        path.chmod(0o644)


def test_permission_error_is_mapped(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the chmod test above is skipped as root, so fake the EACCES where decode opens the file
    path = _save(Image.fromarray(rgb), tmp_path / "locked.png")

    def deny(file: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr("posterforge.images.open", deny, raising=False)
    _fails(path, "permission denied")


def test_bomb_rejected_from_header(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(Image.fromarray(rgb), tmp_path / "big.png")

    def no_load(self: Image.Image) -> None:
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(Image.Image, "load", no_load)
    e = _fails(path, "image too large", max_pixels=47)
    assert e.reason == "image too large: 8 x 6 pixels (limit 47)"


def test_bomb_rejected_by_pillow(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(Image.fromarray(rgb), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow raises inside Image.open
    e = _fails(path, "image too large")
    assert e.reason == "image too large: 48 pixels (limit 20)"


def test_pillow_s_bomb_warning_never_reaches_the_user(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before (issue 23): Pillow's raw DecompressionBombWarning was printed; our limits decide
    path = _save(Image.fromarray(rgb), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # 48 px: Pillow would warn
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert decode(path).size == (rgb.shape[1], rgb.shape[0])
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
    with warnings.catch_warnings():  # e.g. pytest -W error: still no exception of Pillow's
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        decode(path)
    with pytest.raises(ImageError, match="image too large"):  # our own limit, one line
        decode(path, max_pixels=20)


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("x.png", "png"),
        (".JPEG", "jpg"),
        ("jpeg", "jpg"),
        (Path("a/b.Jpg"), "jpg"),
        ("p.tif", "tiff"),
        (".tiff", "tiff"),
        ("w.webp", "webp"),
        ("b.BMP", "bmp"),
        ("archive.tar.png", "png"),
    ],
)
def test_format_for(given: str | Path, name: str) -> None:
    assert format_for(given) == name


@pytest.mark.parametrize("given", ["x.xcf", ".txt", "noext", "png.d/"])
def test_format_for_unknown(given: str) -> None:
    with pytest.raises(ValueError, match="unknown image format"):
        format_for(given)


def test_suffix_tables_agree() -> None:
    assert {format_for(s) for s in IMAGE_SUFFIXES} == set(FORMATS)
    for name, spec in FORMATS.items():
        assert format_for(spec.suffix) == name
        assert spec.suffix in IMAGE_SUFFIXES


# --- encoding -----------------------------------------------------------------------------------


def _smooth() -> np.ndarray:
    """(16, 16, 3) gradient: lossy codecs subsample chroma, so noise is not a fair check."""
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = np.arange(16)[None, :] * 16
    img[..., 1] = np.arange(16)[:, None] * 8
    img[..., 2] = 200
    return img


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_round_trip(tmp_path: Path, rgb: np.ndarray, name: str) -> None:
    lossy = name in ("jpg", "webp")
    img = _smooth() if lossy else rgb
    path = tmp_path / "deep" / "er" / f"out{FORMATS[name].suffix}"  # parents are created
    encode_atomic(img, path)
    with Image.open(path) as im:
        assert im.format == FORMATS[name].pillow
    d = decode(path)
    assert d.alpha is None
    if lossy:
        assert np.abs(d.rgb.astype(int) - img).max() <= 10
    else:
        np.testing.assert_array_equal(d.rgb, img)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_fmt_overrides_suffix(tmp_path: Path, rgb: np.ndarray) -> None:
    encode_atomic(rgb, tmp_path / "odd.bin", fmt="png")
    with Image.open(tmp_path / "odd.bin") as im:
        assert im.format == "PNG"


@pytest.mark.parametrize(
    ("name", "kept"),
    [("png", True), ("webp", True), ("tiff", True), ("jpg", False), ("bmp", False)],
)
def test_alpha_only_where_supported(tmp_path: Path, rgb: np.ndarray, name: str, kept: bool) -> None:
    alpha = np.full((6, 8), 255, np.uint8)
    alpha[0, :3] = 0
    path = tmp_path / f"a{FORMATS[name].suffix}"
    encode_atomic(rgb, path, alpha=alpha, fmt=name)
    d = decode(path)
    if kept:
        assert d.alpha is not None
        np.testing.assert_array_equal(d.alpha, alpha)
    else:
        assert d.alpha is None


def test_bad_arrays_rejected(tmp_path: Path, rgb: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_atomic(rgb.astype(np.float32), tmp_path / "x.png")
    with pytest.raises(ValueError, match="does not match"):
        encode_atomic(rgb, tmp_path / "x.png", alpha=np.zeros((2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_output_honours_umask(tmp_path: Path, rgb: np.ndarray) -> None:
    old = os.umask(0o022)
    try:
        encode_atomic(rgb, tmp_path / "m.png")
    finally:
        os.umask(old)
    assert (tmp_path / "m.png").stat().st_mode & 0o777 == 0o644


def _boom(*args: object, **kwargs: object) -> None:
    raise OSError("disk full")


def test_failed_write_leaves_nothing(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image.Image, "save", _boom)
    with pytest.raises(OSError, match="disk full"):
        encode_atomic(rgb, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_target(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old contents")

    def half_then_boom(self: Image.Image, fp, *args: object, **kwargs: object) -> None:
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_then_boom)
    with pytest.raises(OSError, match="disk full"):
        encode_atomic(rgb, target)
    assert target.read_bytes() == b"old contents"
    assert list(tmp_path.iterdir()) == [target]


def test_success_replaces_old_target(tmp_path: Path, rgb: np.ndarray) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old contents")
    encode_atomic(rgb, target)
    np.testing.assert_array_equal(decode(target).rgb, rgb)
    assert list(tmp_path.iterdir()) == [target]


def test_temp_names_are_recognised(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def spy(self: Image.Image, fp, *args: object, **kwargs: object) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())  # the temp file sits next to the target
        raise OSError("stop")

    monkeypatch.setattr(Image.Image, "save", spy)
    with pytest.raises(OSError):
        encode_atomic(rgb, tmp_path / "poster.png")
    (name,) = seen
    assert name.startswith(".poster.png.") and name.endswith(".tmp")
    assert is_temp_file(name) and is_temp_file(tmp_path / name)
    for other in ["poster.png", ".hidden.png", ".notes.tmp", "x.12345678.tmp"]:
        assert not is_temp_file(other)


@pytest.mark.parametrize(("quality", "sampling"), [(95, 0), (90, 0), (80, 2)])
def test_jpeg_chroma_subsampling(tmp_path: Path, quality: int, sampling: int) -> None:
    encode_atomic(_smooth(), tmp_path / "q.jpg", quality=quality)
    with Image.open(tmp_path / "q.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == sampling  # 0 is 4:4:4, 2 is 4:2:0
