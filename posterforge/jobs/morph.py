"""The morph job: every option of ``posterforge morph`` (and ``posterforge.morph``), checked once
when the job is made (what a genre means, and whether the model can morph in W, is the model's to
check when the run starts)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import (
    PRECISIONS,
    CompileMode,
    Precision,
    about,
    at_least,
    check_device,
    compile_field,
    device_field,
    one_of,
    precision_field,
)
from posterforge.jobs.generate import DEFAULT_MODEL, parse_seeds

Space = Literal["auto", "z", "w"]
SPACES: tuple[str, ...] = get_args(Space)
MAX_SECONDS = 3600.0
MAX_FPS = 240.0
MAX_FRAMES = 100_000
MAX_STOPS = 1000


@dataclass(frozen=True)
class MorphJob:
    """A video that moves smoothly through its stops, the posters of (genre, seed) pairs: label
    rows blended linearly, noise slerped in z, or w lerped for a model with a W latent. The first
    frame is the first stop's poster (as ``generate --seeds`` makes it), the last the last one's.
    The same job writes the same file; a killed run resumes."""

    out: Path = about("The video: .mp4, .mkv, .webm, .mov, ... or an animated .gif or .webp.", None)
    conditions: tuple[str, ...] = about(
        "A stop's genre (label name, alias or mix); repeat for several. Leave out for an "
        "unconditional model.",
        (),
    )
    model: str = about("Generator name or a .safetensors file.", DEFAULT_MODEL)
    seeds: tuple[int, ...] = about(
        "The stops' seeds (1,2,3 or 1-4): one seed for every genre, or one per genre.", (0,)
    )
    seconds: float = about("Length of the video in seconds.", 4.0)
    fps: float = about("Frames per second (23.976 and the like are kept exact).", 24.0)
    space: Space = about(
        "Where noise moves: auto (w for a model with a W latent, else z), z (slerp) or w (lerp).",
        "auto",
    )
    batch_size: int = about("Frames per batch.", 16)
    vcodec: str | None = about("Video encoder (default: libx264, libvpx-vp9 for .webm).", None)
    crf: int | None = about("Constant quality of the encoder (lower: better, bigger).", None)
    device: str = device_field()
    precision: Precision = precision_field()
    compile: CompileMode = compile_field()
    overwrite: bool = about("Replace the video if it exists (or its unfinished work).", False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.out is None:
            raise PosterforgeError("nothing to write: pass --out FILE (e.g. morph.mp4)")
        set_(self, "out", Path(self.out))
        set_(self, "conditions", tuple(c for c in self.conditions or () if c is not None))
        seeds = parse_seeds(self.seeds) if isinstance(self.seeds, str) else self.seeds
        set_(self, "seeds", tuple(int(s) for s in seeds or ()))
        if not self.seeds or min(self.seeds) < 0:
            raise PosterforgeError("--seeds: give seeds of 0 or more, e.g. 1,2,3")
        self._check_timing()
        self._check_stops()
        one_of(self.space, SPACES, "space")
        one_of(self.precision, PRECISIONS, "precision")
        at_least(self.batch_size, 1, "batch_size")
        check_device(self.device)
        self._check_out()

    def _check_timing(self) -> None:
        limits = (("seconds", self.seconds, MAX_SECONDS), ("fps", self.fps, MAX_FPS))
        for name, value, top in limits:
            if not value > 0:  # also NaN
                raise PosterforgeError(f"--{name} {value}: must be more than 0")
            if value > top:
                raise PosterforgeError(f"--{name} {value}: at most {top:g}")
        if not 2 <= self.frames <= MAX_FRAMES:
            raise PosterforgeError(
                f"--seconds {self.seconds:g} at --fps {self.fps:g} make {self.frames} frame(s): "
                f"a morph needs 2 to {MAX_FRAMES}"
            )

    def _check_stops(self) -> None:
        genres, seeds = len(self.conditions), len(self.seeds)
        if genres > 1 and seeds > 1 and genres != seeds:
            raise PosterforgeError(
                f"{genres} genres and {seeds} seeds: give one seed for all genres, one genre for "
                "all seeds, or as many of each"
            )
        if len(self.stops) < 2:
            raise PosterforgeError(
                "nothing to morph: give two or more --genre, or two or more --seeds"
            )
        if len(self.stops) > MAX_STOPS:
            raise PosterforgeError(f"{len(self.stops)} stops: at most {MAX_STOPS}")

    def _check_out(self) -> None:
        from posterforge.video.containers import ANIMATIONS, MUXERS

        out = self.out
        suffix = out.suffix.lower()
        if suffix not in MUXERS and suffix not in ANIMATIONS:
            known = " ".join(sorted({*MUXERS, *ANIMATIONS}))
            raise PosterforgeError(f"--out {out}: cannot write {suffix or 'no-suffix'} videos; "
                                   f"use one of {known}")  # fmt: skip
        if out.is_dir():
            raise PosterforgeError(f"--out {out}: is a folder; name the video file to write")
        if suffix in ANIMATIONS:
            from posterforge.video.animation import check_options

            check_options(out, self.vcodec, self.crf)
        parent = out.absolute().parent
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise PosterforgeError(f"--out {out}: {existing} is a file, not a folder")

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def rate(self) -> Fraction:
        """The frame rate, exact: 23.976 (or 23.98) -> 24000/1001, 25 -> 25."""
        for n in (24, 30, 48, 60, 120, 240):  # the NTSC rates, as 1000/1001 of these
            if abs(self.fps - n * 1000 / 1001) < 0.006:
                return Fraction(n * 1000, 1001)
        return Fraction(self.fps).limit_denominator(1000)

    @property
    def stops(self) -> list[tuple[str | None, int]]:
        """(genre or None, seed) of each stop, in order."""
        genres: list[str | None] = list(self.conditions) or [None]
        n = max(len(genres), len(self.seeds))
        pick = lambda xs, i: xs[i] if len(xs) > 1 else xs[0]  # noqa: E731
        return [(pick(genres, i), pick(list(self.seeds), i)) for i in range(n)]
