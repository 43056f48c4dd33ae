"""The ``eval`` job: a generator (a name or file, resolved when it runs) against a folder of real
images, checked once with the lines the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import at_least, check_device


@dataclass(frozen=True)
class EvalJob:
    """Measure ``model`` on ``n`` generated images (over all labels) against the real images of
    ``data`` (a folder, or one sub-folder per label), labelled by ``labels`` (a CSV or JSONL file)
    when given; ``max_real`` keeps the first real images only; ``inception_weights``: a local
    torchvision inception_v3 state dict, for standard FID."""

    model: str
    data: Path
    labels: Path | None = None
    n: int = 1000
    max_real: int | None = None
    inception_weights: Path | None = None
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.data is None:
            raise PosterforgeError("name the real images with --data DIR")
        for name in ("data", "labels", "inception_weights"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if not self.data.is_dir():
            raise PosterforgeError(f"--data {self.data}: folder not found")
        if self.n < 1:
            raise PosterforgeError("-n must be at least 1")
        at_least(self.max_real, 1, "--max-real")
        at_least(self.batch_size, 1, "batch_size")
        check_device(self.device)
