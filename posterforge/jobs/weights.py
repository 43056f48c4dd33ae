"""The weights export job: ``posterforge weights export NAME --format onnx --out FILE.onnx``
(and ``posterforge.export_weights``), checked once when it is made; what the model itself
allows (its size multiple, whether its family exports) is checked when it is resolved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import about, one_of

ExportFormat = Literal["onnx"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
SUFFIX = {"onnx": ".onnx"}


@dataclass(frozen=True)
class WeightsExportJob:
    """Write ``model`` (a style, a generator, a weight name or file) as a standard ONNX file
    ``out``, fp32, with posterforge's metadata, after checking it against torch on a fixed
    probe. The batch axis is always dynamic; a translator's frame size is ``size`` or, by
    default and with ``dynamic``, any size of its multiple."""

    model: str = about("A style, a generator, a weight name or a .safetensors file.")
    out: Path = about("The file to write (FILE.onnx).")
    fmt: ExportFormat = about("onnx (the one format so far).", "onnx")
    size: str | None = about(
        "WxH: a translator's fixed frame size (each side a multiple of its size multiple); "
        "a generator's size is its own.",
        None,
    )
    dynamic: bool = about(
        "Any frame size (a translator's height and width as dynamic axes; the default).", False
    )
    overwrite: bool = about("Replace the file if it exists.", False)

    def __post_init__(self) -> None:
        if self.out is None:
            raise PosterforgeError("name the file to write with --out FILE.onnx")
        object.__setattr__(self, "out", Path(self.out))
        one_of(self.fmt, EXPORT_FORMATS, "fmt")
        if self.size is not None and self.dynamic:
            raise PosterforgeError("--size and --dynamic exclude each other: pick one")
        self.frame  # noqa: B018  (parses --size: a bad one is one line here)
        suffix = SUFFIX[self.fmt]
        out = self.out
        if out.is_dir():
            raise PosterforgeError(f"--out {out}: is a folder; name a file (model{suffix})")
        if out.suffix.lower() != suffix:
            raise PosterforgeError(f"--out {out}: end the file name in {suffix}")
        if out.exists() and not self.overwrite:
            raise PosterforgeError(f"--out {out}: exists already; pass --overwrite to replace it")
        for parent in out.absolute().parents:
            if parent.exists():
                if not parent.is_dir():
                    raise PosterforgeError(f"--out {out}: {parent} is a file, not a folder")
                break

    @property
    def frame(self) -> tuple[int, int] | None:
        """``(W, H)`` of ``size``, or None for any size."""
        if self.size is None:
            return None
        from posterforge.sizing import Size

        parsed = Size.parse(self.size)
        if parsed.width is None or parsed.height is None:
            raise PosterforgeError(
                f"invalid size {self.size!r}: an export takes WxH (both sides), e.g. 256x256"
            )
        return parsed.width, parsed.height
