"""Decode images to numpy arrays and write them back atomically. Pillow and numpy only, no torch.

Arrays are channel-last uint8: RGB is (H, W, 3), alpha is (H, W). Sizes are (W, H) as in Pillow.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageOps

from posterforge.errors import PosterforgeError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
)


class ImageError(PosterforgeError):
    """An input that cannot be decoded. ``str(e)`` is the single line ``"{path}: {reason}"``."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = Path(path)
        self.reason = " ".join(reason.split())  # the CLI prints one line per failed input
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self) -> tuple[type[ImageError], tuple[Path, str]]:
        # the default rebuilds from args=(message,), which lacks `reason`; worker processes pickle
        return type(self), (self.path, self.reason)


@dataclass
class Decoded:
    """A decoded image, already turned upright by its EXIF orientation."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous
    alpha: np.ndarray | None  # (H, W) uint8, or None when the file has no transparency
    size: tuple[int, int]  # (W, H) after EXIF orientation


# Grayscale modes that hold 16-bit samples; Pillow opens 16-bit PNG/TIFF as one of these ("I" too).
_WIDE_GRAY = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_BOMB_RE = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")


def decode(path: str | os.PathLike[str], *, max_pixels: int = 178_956_970) -> Decoded:
    """Read the first frame of ``path`` fully into memory as RGB (H, W, 3) and alpha (H, W).

    Every failure, whatever its cause, is raised as :class:`ImageError` with a short reason.
    Pillow's own ``Image.MAX_IMAGE_PIXELS`` still applies as a ceiling (it rejects at open time).
    """
    path = Path(path)
    with _open_regular(path) as fh:
        try:
            with Image.open(fh) as im:
                w, h = im.size
                if w * h > max_pixels:  # decided from the header, before any pixel is decoded
                    reason = f"image too large: {w} x {h} pixels (limit {max_pixels})"
                    raise ImageError(path, reason)
                im.load()  # decode everything now so truncation fails here, not in a worker later
                try:
                    upright = ImageOps.exif_transpose(im)
                except Exception:  # a broken EXIF block should not cost us intact pixels
                    upright = im
                try:
                    rgb, alpha = _split(upright)
                except Exception as e:
                    raise ImageError(path, f"unsupported image mode {upright.mode}") from e
                return Decoded(rgb=rgb, alpha=alpha, size=upright.size)
        except ImageError:
            raise
        except Image.UnidentifiedImageError as e:
            raise ImageError(path, "not an image") from e
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            # the warning only arrives here when warnings are turned into errors
            raise ImageError(path, _bomb_reason(e)) from e
        except MemoryError as e:
            raise ImageError(path, "out of memory while decoding") from e
        except Exception as e:  # OSError, SyntaxError, struct.error...: all mean bad bytes
            raise ImageError(path, "truncated or corrupt image") from e


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading, mapping OS errors to reasons a user can act on."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(path, "is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(path, "not a regular file")  # a FIFO would block open() forever
        if st.st_size == 0:
            raise ImageError(path, "empty file")
        return open(path, "rb")  # the caller closes it
    except FileNotFoundError as e:
        reason = "dangling link" if os.path.islink(path) else "file not found"
        raise ImageError(path, reason) from e
    except NotADirectoryError as e:  # a parent component is a file
        raise ImageError(path, "file not found") from e
    except IsADirectoryError as e:
        raise ImageError(path, "is a directory") from e
    except PermissionError as e:
        raise ImageError(path, "permission denied") from e
    except OSError as e:
        raise ImageError(path, f"cannot open: {e.strerror or e}") from e
    except ValueError as e:  # e.g. a NUL byte in a path read from stdin
        raise ImageError(path, "invalid path") from e


def _bomb_reason(e: BaseException) -> str:
    # Pillow rejects inside Image.open, before we see the size; its message has the pixel count.
    m = _BOMB_RE.search(str(e))
    if m is None:
        return "image too large (decompression bomb limit)"
    return f"image too large: {m[1]} pixels (limit {m[2]})"


def _split(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode -> (rgb (H, W, 3) uint8, alpha (H, W) uint8 or None), both C-contiguous."""
    if im.mode in _WIDE_GRAY or im.mode == "F":
        a = np.asarray(im)
        if im.mode == "F":
            gray = np.rint(np.clip(np.nan_to_num(a), 0, 255)).astype(np.uint8)
        else:
            # scale the 16-bit range onto 8 bits (rounded) instead of clipping everything above 255
            gray = ((np.clip(a, 0, 65535).astype(np.uint32) + 128) // 257).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2), None
    # RGBA, LA, PA, P with transparent palette entries, tRNS colour keys
    if im.has_transparency_data:
        rgba = np.asarray(im.convert("RGBA"))
        return np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
    # np.array copies, so the result is writable (torch.from_numpy warns on read-only arrays)
    return np.array(im.convert("RGB")), None


class Format(NamedTuple):
    pillow: str  # name for Image.save(format=...)
    suffix: str  # default suffix for outputs
    alpha: bool  # whether an alpha channel can be stored


FORMATS: dict[str, Format] = {
    "png": Format("PNG", ".png", True),
    "jpg": Format("JPEG", ".jpg", False),
    "webp": Format("WEBP", ".webp", True),
    "bmp": Format("BMP", ".bmp", False),
    "tiff": Format("TIFF", ".tiff", True),
}
_BY_SUFFIX = {f.suffix: name for name, f in FORMATS.items()} | {".jpeg": "jpg", ".tif": "tiff"}


def format_for(path_or_suffix: str | os.PathLike[str]) -> str:
    """Canonical format name from a path, a suffix (".JPEG") or a bare name ("jpeg")."""
    name = Path(path_or_suffix).name.lower()
    key = name[name.rindex(".") :] if "." in name else "." + name
    try:
        return _BY_SUFFIX[key]
    except KeyError:
        known = ", ".join(sorted(_BY_SUFFIX))
        msg = f"unknown image format {str(path_or_suffix)!r}; known suffixes: {known}"
        raise ValueError(msg) from None


_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


def is_temp_file(path: str | os.PathLike[str]) -> bool:
    """True for the ``.{name}.{8 hex}.tmp`` files of encode_atomic (leftovers of a killed run)."""
    return _TEMP_RE.match(Path(path).name) is not None


def encode_atomic(
    rgb: np.ndarray,
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    alpha: np.ndarray | None = None,
    quality: int = 95,
) -> None:
    """Write rgb (H, W, 3) uint8 [+ alpha (H, W) uint8] to ``path``: it appears whole or not at all.

    The format defaults to the one for path's suffix. Alpha is dropped for formats that cannot hold
    it. An existing ``path`` is replaced; deciding whether that is wanted is the caller's job.
    """
    path = Path(path)
    spec = FORMATS[format_for(fmt if fmt is not None else path)]
    rgb = _check(rgb, 3, "rgb")
    if alpha is not None and spec.alpha:
        alpha = _check(alpha, 2, "alpha")
        if alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha shape {alpha.shape} does not match rgb shape {rgb.shape}")
        im = Image.fromarray(np.dstack([rgb, alpha]))
    else:
        im = Image.fromarray(rgb)
    options: dict[str, object] = {}
    if spec.pillow in ("JPEG", "WEBP"):
        options["quality"] = quality
    if spec.pillow == "JPEG" and quality >= 90:
        options["subsampling"] = 0  # 4:4:4 - chroma subsampling smears the thin edges of posters

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)  # same directory, so os.replace is an atomic rename
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=spec.pillow, **options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C too: never leave a half-written temp file behind
        tmp.unlink(missing_ok=True)
        raise


def _check(a: np.ndarray, ndim: int, what: str) -> np.ndarray:
    if a.dtype != np.uint8 or a.ndim != ndim or (ndim == 3 and a.shape[2] != 3):
        want = "(H, W, 3)" if ndim == 3 else "(H, W)"
        raise ValueError(f"{what} must be a {want} uint8 array, got {a.shape} {a.dtype}")
    return np.ascontiguousarray(a)


def _create_temp(target: Path) -> tuple[int, Path]:
    # os.open with 0o666 honours the umask (mkstemp forces 0o600); O_EXCL makes the name ours.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    stem = target.name[:50]  # stay under NAME_MAX (255 bytes) even for multi-byte names
    for _ in range(100):
        tmp = target.with_name(f".{stem}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {target}")
