"""Decode images to numpy arrays and write them back atomically. Pillow and numpy only, no torch.

Arrays are channel-last uint8: RGB is (H, W, 3), alpha is (H, W). Sizes are (W, H) as in Pillow.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageOps

from posterforge.atomic import create_temp, is_temp_name, name_target
from posterforge.errors import PosterforgeError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
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


@dataclass(frozen=True)
class Metadata:
    """What an output inherits from its input: colour profile, EXIF and resolution.

    ``exif`` has its orientation reset to 1 (the pixels are already upright); ``icc_profile`` is
    kept only when it describes RGB, the colour space the pixels are converted to.
    """

    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None


@dataclass
class Decoded:
    """A decoded image, already turned upright by its EXIF orientation."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous
    alpha: np.ndarray | None  # (H, W) uint8, or None when the file has no transparency
    size: tuple[int, int]  # (W, H) after EXIF orientation
    frames: int = 1  # frames in the file (an animated GIF, a multi-page TIFF); rgb is the first
    metadata: Metadata = field(default_factory=Metadata)


# Grayscale modes that hold 16-bit samples; Pillow opens 16-bit PNG/TIFF as one of these ("I" too).
_WIDE_GRAY = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def quiet_bombs() -> None:
    """Pillow warns of a "decompression bomb" past 89 Mpx with its raw warning; our own limits
    decide instead, in one line: decode's ``max_pixels`` and translate's memory gate
    (:mod:`posterforge.tiling`). Set at each open (idempotent), since a caller's
    ``warnings.catch_warnings`` restores the filters on its way out."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


_BOMB_RE = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")


def decode(path: str | os.PathLike[str], *, max_pixels: int = 178_956_970) -> Decoded:
    """Read the first frame of ``path`` fully into memory as RGB (H, W, 3) and alpha (H, W).

    Every failure, whatever its cause, is raised as :class:`ImageError` with a short reason.
    Pillow's own ``Image.MAX_IMAGE_PIXELS`` still applies as a ceiling (it rejects at open time).
    """
    path = Path(path)
    quiet_bombs()
    with _open_regular(path) as fh:
        try:
            with Image.open(fh) as im:
                w, h = im.size
                if w * h > max_pixels:  # decided from the header, before any pixel is decoded
                    reason = f"image too large: {w} x {h} pixels (limit {max_pixels})"
                    raise ImageError(path, reason)
                im.load()  # decode everything now so truncation fails here, not in a worker later
                metadata = _metadata(im)
                try:
                    upright = ImageOps.exif_transpose(im)
                except Exception:  # a broken EXIF block should not cost us intact pixels
                    upright = im
                try:
                    rgb, alpha = _split(upright)
                except Exception as e:
                    raise ImageError(path, f"unsupported image mode {upright.mode}") from e
                frames = max(1, int(getattr(im, "n_frames", 1) or 1))
                return Decoded(rgb, alpha, upright.size, frames, metadata)
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


_ORIENTATION = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image by 90 degrees


def not_regular(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` must not be opened as an input (a FIFO would block forever, a device or a
    socket is no file), or None for a regular file (or one that does not exist: the opener says)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return "is a directory" if stat.S_ISDIR(mode) else "not a regular file"


def probe_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(W, H) of an image as :func:`decode` will return it (upright), read from its header
    alone; None when it cannot be read (decoding will then report why)."""
    if not_regular(path) is not None:
        return None
    quiet_bombs()
    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                turned = im.getexif().get(_ORIENTATION) in _SWAPS_AXES
            except Exception:  # decode keeps the pixels as they are when EXIF is broken
                turned = False
    except Exception:
        return None
    return (h, w) if turned else (w, h)


def _metadata(im: Image.Image) -> Metadata:
    """The ICC profile (RGB only), EXIF (orientation reset to 1) and DPI of ``im``; never raises.

    EXIF is taken only from a real EXIF block (JPEG, PNG, WebP): a TIFF's tags describe its own
    strips and would be nonsense in another file.
    """
    icc = im.info.get("icc_profile")
    # the pixels become RGB: a CMYK or gray profile would make viewers misread them
    if not (isinstance(icc, bytes) and len(icc) >= 128 and icc[16:20] == b"RGB "):
        icc = None
    exif, turned = None, False
    raw = im.info.get("exif")
    if isinstance(raw, bytes) and raw:
        try:
            tags = Image.Exif()
            tags.load(raw)
            turned = tags.get(_ORIENTATION) in _SWAPS_AXES
            if _ORIENTATION in tags:
                tags[_ORIENTATION] = 1
            exif = tags.tobytes() if len(tags) else None
        except Exception:  # a broken EXIF block is dropped, the image is still good
            exif, turned = None, False
    dpi = None
    given = im.info.get("dpi")
    try:
        if given is not None:
            x, y = (float(v) for v in given)
            if x > 0 and y > 0:
                dpi = (y, x) if turned else (x, y)
    except (TypeError, ValueError):
        dpi = None
    return Metadata(icc_profile=icc, exif=exif, dpi=dpi)


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
    metadata: frozenset[str] = frozenset()  # the Metadata fields Pillow can write in this format


_ALL_METADATA = frozenset({"icc_profile", "exif", "dpi"})
FORMATS: dict[str, Format] = {
    "png": Format("PNG", ".png", True, _ALL_METADATA),
    "jpg": Format("JPEG", ".jpg", False, _ALL_METADATA),
    "webp": Format("WEBP", ".webp", True, frozenset({"icc_profile", "exif"})),
    "bmp": Format("BMP", ".bmp", False, frozenset({"dpi"})),
    "tiff": Format("TIFF", ".tiff", True, _ALL_METADATA),
    # 256 colours and 1-bit transparency: written only on request (--format gif)
    "gif": Format("GIF", ".gif", True),
}
_BY_SUFFIX = {f.suffix: name for name, f in FORMATS.items()} | {".jpeg": "jpg", ".tif": "tiff"}
# Formats read but not written back by default: a translated GIF would lose its colours to a
# 256-entry palette, so its output is a PNG unless the user asks for GIF.
DEFAULT_OUTPUT: dict[str, str] = {"gif": "png"}


def output_format(path_or_suffix: str | os.PathLike[str]) -> str:
    """The format an output gets from its input when no format is asked for."""
    name = format_for(path_or_suffix)
    return DEFAULT_OUTPUT.get(name, name)


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


def is_temp_file(path: str | os.PathLike[str]) -> bool:
    """True for the temp files of encode_atomic and atomic_write,
    ``.{name}.{pid}-{host}-{8 hex}.tmp`` (and ``.{name}.{8 hex}.tmp`` of earlier versions)."""
    return is_temp_name(path)


def encode_atomic(
    rgb: np.ndarray,
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    metadata: Metadata | None = None,
) -> None:
    """Write rgb (H, W, 3) uint8 [+ alpha (H, W) uint8] to ``path``: it appears whole or not at all.

    The format defaults to the one for path's suffix. Alpha is dropped for formats that cannot hold
    it. ``quality`` (1-100) applies to JPEG and WebP. ``metadata`` (ICC profile, EXIF, DPI) is
    written as far as the format can hold it. An existing ``path`` is replaced; deciding whether
    that is wanted is the caller's job.
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
    if metadata is not None:
        options.update(_metadata_options(metadata, spec))

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # unique per write and named after this process; same folder, so the rename is atomic
        fd, tmp = create_temp(path)
    except OSError as e:
        raise name_target(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=spec.pillow, **options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # Ctrl-C too: never leave a half-written temp file behind
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            name_target(e, path)  # "cannot write PATH", not the temp file or no name at all
        raise


def _metadata_options(metadata: Metadata, spec: Format) -> dict[str, object]:
    """Image.save keyword arguments for the parts of ``metadata`` that ``spec`` can store."""
    given = {
        "icc_profile": metadata.icc_profile,
        "exif": metadata.exif,
        "dpi": metadata.dpi,
    }
    return {k: v for k, v in given.items() if v is not None and k in spec.metadata}


def _check(a: np.ndarray, ndim: int, what: str) -> np.ndarray:
    if a.dtype != np.uint8 or a.ndim != ndim or (ndim == 3 and a.shape[2] != 3):
        want = "(H, W, 3)" if ndim == 3 else "(H, W)"
        raise ValueError(f"{what} must be a {want} uint8 array, got {a.shape} {a.dtype}")
    return np.ascontiguousarray(a)
