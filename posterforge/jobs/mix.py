"""The mix job: every option of ``posterforge mix`` (and ``posterforge.mix``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import about, check_device
from posterforge.jobs.generate import parse_seeds

LAYER_NAMES = ("coarse", "middle", "fine")
_RANGE = re.compile(r"(\d+)-(\d+)")


@dataclass(frozen=True)
class MixJob:
    """A style mixing grid: the top row's posters come from ``cols``, the left column's from
    ``rows``; cell (r, c) takes row r's styles except on ``layers``, which come from column
    c's (so a cell whose row and column seed agree is that seed's plain poster)."""

    rows: tuple[int, ...] = about("Seeds of the rows (a list and ranges: 1,5-9).")
    cols: tuple[int, ...] = about("Seeds of the columns, whose styles replace the rows' on "
                                  "--layers.")  # fmt: skip
    out: Path = about("The grid image to write (.png, .jpg or .webp).")
    model: str = about("Generator name or a .safetensors file (it needs per-layer styles).",
                       "posters-stylegan")  # fmt: skip
    layers: str = about(
        "Style layers taken from the columns: coarse, middle or fine (thirds of the model's "
        "layers) or a range A-B (0-based, inclusive).",
        "coarse",
    )
    genre: str | None = about("The label, for a conditional model.", None)
    truncation: float | None = about("PSI > 0: the model's own truncation.", None)
    device: str = about("auto, cpu, cuda, cuda:N or mps.", "auto")
    overwrite: bool = about("Replace the grid if it exists.", False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("rows", "cols"):
            value = getattr(self, name)
            seeds = parse_seeds(value) if isinstance(value, str) else tuple(value or ())
            if not seeds or min(seeds) < 0 or len(seeds) > 64:
                raise PosterforgeError(f"--{name}: give 1 to 64 seeds of 0 or more, e.g. 1,5-9")
            set_(self, name, tuple(int(s) for s in seeds))
        set_(self, "out", Path(self.out))
        if self.layers not in LAYER_NAMES and not _RANGE.fullmatch(self.layers):
            raise PosterforgeError(
                f"--layers {self.layers!r}: use coarse, middle, fine or a range A-B (e.g. 0-3)"
            )
        if self.truncation is not None and self.truncation <= 0:
            raise PosterforgeError(f"truncation must be positive, not {self.truncation}")
        check_device(self.device)
        from posterforge.sheet import check_destination

        check_destination(self.out, "--out")
        if self.out.exists() and not self.overwrite:
            raise PosterforgeError(f"{self.out} exists: pass --overwrite to replace it")

    def layer_range(self, style_layers: int) -> range:
        """The layers taken from the columns, for a model with ``style_layers`` of them."""
        if self.layers in LAYER_NAMES:
            i = LAYER_NAMES.index(self.layers)
            cuts = [0, style_layers // 3, 2 * style_layers // 3, style_layers]
            return range(cuts[i], cuts[i + 1])
        m = _RANGE.fullmatch(self.layers)
        assert m is not None
        a, b = int(m[1]), int(m[2])
        if not a <= b < style_layers:
            raise PosterforgeError(
                f"--layers {self.layers}: this model has style layers 0-{style_layers - 1}"
            )
        return range(a, b + 1)
