"""The translate job: every option of ``posterforge translate`` (and ``posterforge.translate``),
checked once when the job is made."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from posterforge.backends import BACKENDS, Backend
from posterforge.errors import PosterforgeError
from posterforge.jobs.common import (
    ALPHA_MODES,
    COMPILE_MODES,
    PRECISIONS,
    AlphaMode,
    CompileMode,
    InvalidOption,
    Precision,
    about,
    at_least,
    backend_field,
    check_device,
    check_format,
    check_shard,
    compile_field,
    device_field,
    in_range,
    one_of,
    precision_field,
)
from posterforge.sizing import Size

DEFAULT_STYLE = "vintage"
STABILIZE_STRENGTH = 0.5  # --stabilize alone (see posterforge/stabilize.py)


@dataclass(frozen=True)
class TranslateJob:
    """Translate image files, folders (recursive), video files or ``-`` (paths on stdin) into
    ``out``, which mirrors the input tree (or names the output file of one video input)."""

    inputs: tuple[str, ...] = about(
        "Image or video files, folders (recursive), or - to read paths from stdin."
    )
    out: Path = about(
        "Output folder (mirrors the input tree), or a video file for one video input."
    )
    style: str = about("Style name or a .safetensors weight file.", DEFAULT_STYLE)
    batch_size: int | None = about("Images per batch (default: 1 on CPU, 8 on GPU).", None)
    size: Size | None = about("Resize first: N (shorter side) or WxH, at most 16384.", None)
    fmt: str | None = about(
        "png, jpg, webp, bmp, tiff or gif (default: as the input; GIF inputs give PNG).", None
    )
    quality: int = about("JPEG and WebP quality, 1-100.", 95)
    metadata: bool = about(
        "Carry each input's ICC profile, EXIF (orientation reset) and DPI to its output.", True
    )
    device: str = device_field()
    precision: Precision = precision_field()
    compile: CompileMode = compile_field()
    backend: Backend = backend_field()
    overwrite: bool = about("Replace outputs that exist already.", False)
    shard: str | None = about(
        "K/N: process a deterministic 1/N of the inputs (torchrun: automatic).", None
    )
    alpha: AlphaMode = about(
        "keep (pass transparency through where the format can) or drop.", "keep"
    )
    null: bool = about("Paths on stdin end in NUL, not newline (find -print0).", False)
    relative_to: Path | None = about(
        "Name each output by its input's path below DIR (mirrors absolute paths).", None
    )
    vcodec: str | None = about(
        "Video encoder (default libx264; libvpx-vp9 for .webm outputs).", None
    )
    crf: int | None = about(
        "Video quality: constant rate factor, lower is better (default 18).", None
    )
    workers: int | None = about("Decode and encode threads (default: up to 4).", None)
    stabilize: float | None = about(
        "Videos: normalise each frame with instance-norm statistics averaged over its shot's "
        "frames so far, this strength, 0 <= S < 1 (less flicker; None: off).", None
    )

    def __post_init__(self) -> None:
        # Accept what a caller naturally has (a list, a str path, "256") and keep one form.
        set_ = object.__setattr__
        set_(self, "inputs", tuple(str(i) for i in self.inputs))
        set_(self, "out", Path(self.out))
        if isinstance(self.size, str):
            set_(self, "size", Size.parse(self.size))
        if self.relative_to is not None:
            set_(self, "relative_to", Path(self.relative_to))
        one_of(self.alpha, ALPHA_MODES, "alpha")
        one_of(self.precision, PRECISIONS, "precision")
        one_of(self.compile, COMPILE_MODES, "compile")
        one_of(self.backend, BACKENDS, "backend")
        check_device(self.device)
        in_range(self.quality, 1, 100, "quality")
        at_least(self.batch_size, 1, "batch_size")
        at_least(self.workers, 1, "workers")
        if self.fmt is not None:
            set_(self, "fmt", check_format(self.fmt))
        if self.null and "-" not in self.inputs:
            raise PosterforgeError(
                "--null reads NUL-separated paths from stdin: give - as an input"
            )
        if self.size is not None:
            self.size.check_memory(self.batch_size or 1)
        if self.relative_to is not None and not os.path.isdir(self.relative_to):
            raise PosterforgeError(f"--relative-to {self.relative_to}: no such folder")
        if self.shard is not None:
            check_shard(self.shard)
        if self.stabilize is not None:
            if isinstance(self.stabilize, bool) or not 0 <= self.stabilize < 1:
                raise InvalidOption("stabilize", self.stabilize, "use a strength 0 <= S < 1")
            set_(self, "stabilize", float(self.stabilize))


def default_output(inputs: tuple[str, ...], style: str) -> Path:
    """Where a translate run writes when no ``--out`` is given: beside its one input, named for
    the style (``frames/`` -> ``frames-vintage/``, ``clip.mp4`` -> ``clip-vintage.mp4``,
    ``photo.jpg`` -> ``photo-vintage/``): never inside the input tree. Several inputs, or paths on
    stdin, need an ``--out``; so does a default that exists as a file."""
    from posterforge.video.containers import VIDEO_SUFFIXES, output_suffix

    if len(inputs) != 1 or inputs[0] == "-":
        raise PosterforgeError(
            "name the output with --out (a default is made only for one folder, image or video)"
        )
    src = Path(inputs[0])
    name = Path(style).stem if style.endswith(".safetensors") or "/" in style else style
    if src.suffix.lower() in VIDEO_SUFFIXES and not src.is_dir():
        out = src.with_name(f"{src.stem}-{name}{output_suffix(src.suffix)}")
        if out.is_dir():
            raise PosterforgeError(f"the default output {out} is a folder; name one with --out")
        return out
    place = src if src.name not in ("", ".", "..") else src.resolve()  # "." names no folder
    out = place.parent / f"{place.name if src.is_dir() else src.stem}-{name}"
    if out.exists() and not out.is_dir():
        raise PosterforgeError(f"the default output {out} is a file; name another with --out")
    return out
