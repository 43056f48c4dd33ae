"""The project job: every option of ``posterforge project`` (and ``posterforge.project``),
checked once when the job is made (labels are the model's to check, when it loads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import InvalidOption, about, check_device, in_range, one_of
from posterforge.jobs.generate import DEFAULT_MODEL

Fit = Literal["crop", "letterbox"]
FITS: tuple[str, ...] = get_args(Fit)


@dataclass(frozen=True)
class ProjectJob:
    """Find, for each poster, the latent whose image matches it best (Adam on a pixel loss plus
    a feature loss), and write ``STEM.png`` (the reconstruction), ``STEM.npz`` (the latent) and
    ``STEM.json`` (the losses) under ``out``; with ``as_labels``, also ``STEM-as-LABEL.png``
    and the row ``STEM-row.png`` (poster, reconstruction, re-renders)."""

    posters: tuple[Path, ...] = about("Poster images to project.")
    out: Path = about("Output folder.")
    model: str = about("Generator name or a .safetensors file (it needs latents).", DEFAULT_MODEL)
    genre: str | None = about(
        "The posters' label; leave out to try every label (a short pixel-only screen), keep "
        "the best and report the ranking.",
        None,
    )
    as_labels: tuple[str, ...] = about(
        "Also re-render each projected poster under these labels (comma list).", ()
    )
    steps: int = about("Optimisation steps per poster.", 100)
    lr: float = about("Adam's learning rate on the latent.", 0.1)
    seed: int = about("Seed of the noise added to the latent early on (same seed, same "
                      "result on the same device).", 0)  # fmt: skip
    fit: Fit = about(
        "How a poster of another aspect meets the model's size: crop (the centre, the "
        "default) or letterbox (all of it, bars of its mean colour); never stretched.",
        "crop",
    )
    feature_weight: float = about("Weight of the feature loss (0: pixels only).", 0.1)
    features: str | None = about(
        "Feature extractor for the feature loss (default: the one eval uses).", None
    )
    device: str = about("auto, cpu, cuda, cuda:N or mps.", "auto")
    overwrite: bool = about("Replace outputs that exist already.", False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "posters", tuple(Path(p) for p in self.posters or ()))
        set_(self, "out", Path(self.out))
        if isinstance(self.as_labels, str):
            set_(self, "as_labels", split_labels(self.as_labels))
        set_(self, "as_labels", tuple(self.as_labels or ()))
        if not self.posters:
            raise PosterforgeError("no posters to project: name one or more image files")
        in_range(self.steps, 1, 100_000, "steps")
        if not 0 < self.lr <= 10:
            raise InvalidOption("lr", self.lr, "use a learning rate above 0, at most 10")
        if not 0 <= self.feature_weight <= 1000:
            raise InvalidOption("feature_weight", self.feature_weight, "use 0 to 1000")
        if self.seed < 0:
            raise InvalidOption("seed", self.seed, "use 0 or more")
        one_of(self.fit, FITS, "fit")
        check_device(self.device)
        if self.out.exists() and not self.out.is_dir():
            raise PosterforgeError(f"--out {self.out}: is a file, not a folder")
        stems: dict[str, Path] = {}
        for p in self.posters:
            if p.stem in stems:
                raise PosterforgeError(
                    f"{p} and {stems[p.stem]} would write the same outputs ({p.stem}.png): "
                    "rename one or project them into different folders"
                )
            stems[p.stem] = p


def split_labels(text: str) -> tuple[str, ...]:
    """``horror,comedy`` -> ("horror", "comedy"); a mix (``horror+comedy``) stays one."""
    return tuple(s.strip() for s in text.split(",") if s.strip())
