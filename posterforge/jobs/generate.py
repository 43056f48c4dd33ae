"""The generate job: every option of ``posterforge generate`` (and ``posterforge.generate``),
checked once when the job is made (what a condition means is the model's to check)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posterforge.backends import BACKENDS, Backend
from posterforge.errors import PosterforgeError
from posterforge.jobs.common import (
    COMPILE_MODES,
    PRECISIONS,
    CompileMode,
    Precision,
    about,
    at_least,
    backend_field,
    check_device,
    check_format,
    check_shard,
    compile_field,
    device_field,
    one_of,
    precision_field,
)

DEFAULT_MODEL = "posters-demo"


@dataclass(frozen=True)
class GenerateJob:
    """``n`` new images for each condition, written under ``out`` (``CONDITION-00000.png``, or
    ``00000.png`` for an unconditional model) and/or on a captioned contact sheet ``grid``.
    Image ``i`` of a seed is always the same, whatever the batch size, ``n`` or condition."""

    conditions: tuple[str, ...] = about(
        "What to generate, for a conditional model: a label name (a genre for the poster "
        "models); repeat for several; a mix: horror+comedy or horror:0.7+comedy:0.3. Leave out "
        "for an unconditional model.",
        (),
    )
    n: int = about("Images per genre (or in all).", 16)
    out: Path | None = about("Output folder (GENRE-00000.png, or 00000.png, ...).", None)
    model: str = about("Generator name or a .safetensors file.", DEFAULT_MODEL)
    seed: int = about("Same seed, same posters (on the same device).", 0)
    seeds: tuple[int, ...] | None = about(
        "One poster per seed, a list and ranges (1,5-9): each is reproduced from its seed alone "
        "(files CONDITION-seed00007.png; -n and --seed are then not used).",
        None,
    )
    truncation: float | None = about(
        "PSI > 0: more typical, less varied images (the model's own truncation, or noise "
        "redrawn beyond +-PSI).",
        None,
    )
    batch_size: int = about("Images per batch.", 64)
    fmt: str = about("png, jpg or webp.", "png")
    device: str = device_field()
    precision: Precision = precision_field()
    compile: CompileMode = compile_field()
    backend: Backend = backend_field()
    overwrite: bool = about("Replace posters that exist already.", False)
    grid: Path | None = about(
        "Also write a contact sheet, captioned by genre (64 per genre at most).", None
    )
    grid_max: int = about("Images per genre on the contact sheet.", 64)
    shard: str | None = about(
        "K/N: make the batches of posters whose batch number b has b % N == K-1 "
        "(torchrun: automatic).",
        None,
    )
    from_latent: Path | None = about(
        "A latent .npz from project: render it under each --genre (CAPTION-STEM.png; -n, "
        "seeds and truncation are then not used).",
        None,
    )

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "conditions", tuple(c for c in self.conditions or () if c is not None))
        if self.out is not None:
            set_(self, "out", Path(self.out))
        if self.grid is not None:
            set_(self, "grid", Path(self.grid))
        if self.n < 0:
            raise PosterforgeError("-n must not be negative")
        at_least(self.batch_size, 1, "batch_size")
        at_least(self.grid_max, 0, "grid_max")
        if self.out is None and self.grid is None:
            raise PosterforgeError("nothing to write: pass --out DIR and/or --grid FILE")
        if self.truncation is not None and self.truncation <= 0:
            raise PosterforgeError(f"truncation must be positive, not {self.truncation}")
        if self.seed < 0:
            raise PosterforgeError(f"--seed must be 0 or more, not {self.seed}")
        if self.seeds is not None:
            seeds = parse_seeds(self.seeds) if isinstance(self.seeds, str) else self.seeds
            set_(self, "seeds", tuple(int(s) for s in seeds))
            if not self.seeds or min(self.seeds) < 0:
                raise PosterforgeError("--seeds: give seeds of 0 or more, e.g. 1,5-9")
            set_(self, "n", len(self.seeds))
            set_(self, "batch_size", 1)  # a poster of a seed never shares its batch: exact alone
        if self.from_latent is not None:
            set_(self, "from_latent", Path(self.from_latent))
            if self.from_latent.suffix != ".npz":
                raise PosterforgeError(
                    f"--from-latent {self.from_latent}: give a latent .npz (from project)"
                )
            set_(self, "n", 1)
        one_of(self.precision, PRECISIONS, "precision")
        one_of(self.compile, COMPILE_MODES, "compile")
        one_of(self.backend, BACKENDS, "backend")
        check_device(self.device)
        if self.out is not None and self.out.exists() and not self.out.is_dir():
            raise PosterforgeError(f"--out {self.out}: is a file, not a folder")
        if self.grid is not None:
            from posterforge.sheet import check_destination

            check_destination(self.grid, "--grid")
        set_(self, "fmt", check_format(self.fmt))
        if self.shard is not None:
            check_shard(self.shard)

    def address(self, i: int) -> tuple[int, int]:
        """(seed, index) of poster ``i``: its noise depends on nothing else."""
        return (self.seeds[i], 0) if self.seeds is not None else (self.seed, i)

    @property
    def part(self) -> tuple[int, int]:
        """(k, n): this process writes the batches ``b % n == k`` (0-based k)."""
        if self.shard is None:
            return 0, 1
        k, parts = check_shard(self.shard)
        return k - 1, parts


def parse_seeds(text: str) -> tuple[int, ...]:
    """``1,5-9`` -> (1, 5, 6, 7, 8, 9), in the order given; one line for anything else."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise PosterforgeError(f"--seeds {text!r}: use numbers and ranges, e.g. 1,5-9")
        seeds += range(int(low), int(high) + 1) if dash else [int(low)]
    if len(seeds) > 100_000:
        raise PosterforgeError(f"--seeds {text!r}: at most 100000 seeds")
    return tuple(seeds)
