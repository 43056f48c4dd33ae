"""The generate job: every option of ``posterforge generate`` (and ``posterforge.generate``),
checked once when the job is made (what a condition means is the model's to check)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import (
    COMPILE_MODES,
    PRECISIONS,
    CompileMode,
    Precision,
    at_least,
    check_device,
    check_format,
    check_shard,
    one_of,
)

DEFAULT_MODEL = "posters-demo"


@dataclass(frozen=True)
class GenerateJob:
    """``n`` images for each of ``conditions`` (label specs such as ``horror`` or
    ``horror+comedy``; empty for an unconditional generator), written under ``out``
    (``CONDITION-00000.png``, or ``00000.png``) and/or captioned on a contact sheet ``grid``
    (the first ``grid_max`` of each condition).

    ``model``: a generator name or a ``.safetensors`` file. ``seed``: image ``i`` of a seed is
    always the same. ``truncation``: PSI > 0, more typical and less varied images.
    ``batch_size``: images per batch. ``fmt``: png, jpg or webp. ``device``, ``precision``,
    ``compile``: as for translate. ``overwrite``: replace images that exist. ``shard`` ``K/N``:
    make and write only the batches ``b`` with ``b % N == K - 1`` (the grid is still whole).
    """

    conditions: tuple[str, ...] = ()
    n: int = 16
    out: Path | None = None
    model: str = DEFAULT_MODEL
    seed: int = 0
    truncation: float | None = None
    batch_size: int = 64
    fmt: str = "png"
    device: str = "auto"
    precision: Precision = "fp32"
    compile: CompileMode = "auto"
    overwrite: bool = False
    grid: Path | None = None
    grid_max: int = 64
    shard: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "conditions", tuple(c for c in self.conditions or () if c is not None))
        if self.out is not None:
            set_(self, "out", Path(self.out))
        if self.grid is not None:
            set_(self, "grid", Path(self.grid))
        if self.n < 0:
            raise PosterforgeError("-n must not be negative")
        at_least(self.batch_size, 1, "batch size")
        at_least(self.grid_max, 0, "grid size")
        if self.out is None and self.grid is None:
            raise PosterforgeError("nothing to write: pass --out DIR and/or --grid FILE")
        if self.truncation is not None and self.truncation <= 0:
            raise PosterforgeError(f"truncation must be positive, not {self.truncation}")
        if self.seed < 0:
            raise PosterforgeError(f"--seed must be 0 or more, not {self.seed}")
        one_of(self.precision, PRECISIONS, "precision")
        one_of(self.compile, COMPILE_MODES, "compile")
        check_device(self.device)
        if self.out is not None and self.out.exists() and not self.out.is_dir():
            raise PosterforgeError(f"--out {self.out}: is a file, not a folder")
        if self.grid is not None:
            from posterforge.sheet import check_destination

            check_destination(self.grid, "--grid")
        set_(self, "fmt", check_format(self.fmt))
        if self.shard is not None:
            check_shard(self.shard)

    @property
    def part(self) -> tuple[int, int]:
        """(k, n): this process writes the batches ``b % n == k`` (0-based k)."""
        if self.shard is None:
            return 0, 1
        k, parts = check_shard(self.shard)
        return k - 1, parts
