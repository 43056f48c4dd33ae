"""Contact sheets: a quick look at many images in one file (before/after pairs, poster grids)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from posterforge.errors import PosterforgeError
from posterforge.images import FORMATS, decode, encode_atomic, format_for


def check_destination(dest: str | Path, option: str = "--contact-sheet") -> None:
    """Raise a one-line error, before any work, unless an image file can be written at ``dest``:
    a known image suffix, not a folder, no file where a parent folder must be."""
    dest = Path(dest)
    if dest.is_dir():
        raise PosterforgeError(f"{option} {dest}: is a folder; give a file name such as sheet.png")
    try:
        if not dest.suffix:
            raise ValueError(dest)
        format_for(dest.suffix)
    except ValueError:
        known = ", ".join(FORMATS)
        what = f"suffix {dest.suffix!r} names no image format" if dest.suffix else "no suffix"
        raise PosterforgeError(f"{option} {dest}: {what}; end it in one of {known}") from None
    for parent in dest.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise PosterforgeError(f"{option} {dest}: {parent} is a file, not a folder")
            break


def _thumb(path: str | Path, height: int) -> Image.Image:
    im = Image.fromarray(decode(Path(path)).rgb)
    width = max(1, round(im.width * height / im.height))
    return im.resize((width, height), Image.LANCZOS)


def before_after_sheet(
    pairs: Sequence[tuple[str | Path, str | Path]],
    dest: str | Path,
    *,
    height: int = 192,
    gap: int = 8,
) -> Path:
    """One row per (input, output) pair, side by side, written atomically to ``dest``."""
    rows = [(_thumb(a, height), _thumb(b, height)) for a, b in pairs]
    width = max(a.width + b.width for a, b in rows) + 3 * gap
    sheet = Image.new("RGB", (width, len(rows) * (height + gap) + gap), (24, 24, 24))
    for i, (a, b) in enumerate(rows):
        y = gap + i * (height + gap)
        sheet.paste(a, (gap, y))
        sheet.paste(b, (2 * gap + a.width, y))
    encode_atomic(np.asarray(sheet), Path(dest))
    return Path(dest)


def grid_sheet(
    images: Sequence[np.ndarray],
    dest: str | Path,
    *,
    columns: int = 8,
    caption: str = "",
    gap: int = 4,
) -> Path:
    """Equal-size (H, W, 3) uint8 images in a grid, with an optional caption line on top."""
    return labelled_grid([(caption, images)], dest, columns=columns, gap=gap)


def labelled_grid(
    groups: Sequence[tuple[str, Sequence[np.ndarray]]],
    dest: str | Path,
    *,
    columns: int = 8,
    gap: int = 4,
) -> Path:
    """Groups of equal-size (H, W, 3) uint8 images, each as rows under its caption line (e.g. one
    group per genre), written atomically to ``dest``."""
    encode_atomic(labelled_sheet(groups, columns=columns, gap=gap), Path(dest))
    return Path(dest)


def labelled_sheet(
    groups: Sequence[tuple[str, Sequence[np.ndarray]]], *, columns: int = 8, gap: int = 4
) -> np.ndarray:
    """The sheet of :func:`labelled_grid` as an (H, W, 3) uint8 array (training's sample grids
    caption their label rows with it, as ``generate --grid`` does)."""
    groups = [(c, list(imgs)) for c, imgs in groups if len(imgs)]
    if not groups:
        raise ValueError("no images for the grid")
    h, w = groups[0][1][0].shape[:2]
    line = 20
    heights = [(line if c else 0) + -(-len(imgs) // columns) * (h + gap) for c, imgs in groups]
    sheet = Image.new("RGB", (columns * (w + gap) + gap, sum(heights) + gap), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for (caption, imgs), height in zip(groups, heights, strict=True):
        if caption:
            draw.text((gap, y + 4), caption, fill=(235, 235, 235))
        top = y + (line if caption else 0)
        for i, img in enumerate(imgs):
            r, c = divmod(i, columns)
            sheet.paste(Image.fromarray(img), (gap + c * (w + gap), top + gap + r * (h + gap)))
        y += height
    return np.asarray(sheet)
