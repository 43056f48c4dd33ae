"""The translate job: every option of ``posterforge translate`` (and ``posterforge.translate``),
checked once when the job is made."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import (
    ALPHA_MODES,
    COMPILE_MODES,
    PRECISIONS,
    AlphaMode,
    CompileMode,
    Precision,
    at_least,
    check_device,
    check_format,
    check_shard,
    in_range,
    one_of,
)
from posterforge.sizing import Size

DEFAULT_STYLE = "vintage"


@dataclass(frozen=True)
class TranslateJob:
    """Translate image files, folders (recursive), video files or ``-`` (paths on stdin) into
    ``out``, which mirrors the input tree (or names the output file of one video input).

    ``style``: a style name or a ``.safetensors`` file. ``batch_size``: images per batch (None:
    1 on a CPU, 8 on an accelerator). ``size``: ``N`` (shorter side) or ``WxH`` to resize first.
    ``fmt``: the output format (None: as the input). ``quality``: JPEG and WebP, 1-100.
    ``metadata``: carry ICC profile, EXIF and DPI. ``device``: auto, cpu, cuda, cuda:N or mps.
    ``precision``: fp32, fp16 or bf16 (autocast). ``compile``: auto (when the job is long enough
    to pay), on or off. ``overwrite``: replace outputs that exist. ``shard``: ``K/N``, this
    process's share of the inputs. ``alpha``: keep or drop transparency. ``null``: paths on stdin
    end in NUL. ``relative_to``: name outputs by their input's path below this folder.
    ``vcodec``, ``crf``: video encoding. ``workers``: decode/encode threads (None: up to 4).
    """

    inputs: tuple[str, ...]
    out: Path
    style: str = DEFAULT_STYLE
    batch_size: int | None = None
    size: Size | None = None
    fmt: str | None = None
    quality: int = 95
    metadata: bool = True
    device: str = "auto"
    precision: Precision = "fp32"
    compile: CompileMode = "auto"
    overwrite: bool = False
    shard: str | None = None
    alpha: AlphaMode = "keep"
    null: bool = False
    relative_to: Path | None = None
    vcodec: str | None = None
    crf: int | None = None
    workers: int | None = field(default=None, compare=False)

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
        check_device(self.device)
        in_range(self.quality, 1, 100, "quality")
        at_least(self.batch_size, 1, "batch size")
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

