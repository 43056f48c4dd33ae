"""The ``eval`` job: a generator (a name or file, resolved when it runs) against a folder of real
images, checked once with the lines the CLI prints. How a labels file is read is
:class:`~posterforge.jobs.labelled.LabelsReading`'s fields, the ones ``train generator`` takes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import about, at_least, check_device, device_field
from posterforge.jobs.labelled import LabelsReading

DATA_REPORT = Path("eval-data-report.txt")  # where the full problem list goes by default


@dataclass(frozen=True)
class EvalJob(LabelsReading):
    """Measure ``model`` on ``n`` generated images (over all labels) against the real images of
    ``data`` (a folder, or one sub-folder per label), labelled by ``labels`` (a CSV or JSONL file,
    read as the :class:`LabelsReading` fields say) when given."""

    model: str = about("Generator name or a .safetensors file.", "posters-demo")
    data: Path | None = about("Real images: a folder (or one sub-folder per label).", None)
    labels: Path | None = about("CSV or JSONL labels of the real images.", None)
    n: int = about("Images to generate (over all labels).", 1000)
    only: tuple[str, ...] = about(
        "Only these labels (a,b): their real images and generated images for them.", ()
    )
    max_real: int | None = about("Use at most this many real images (the first ones).", None)
    inception_weights: Path | None = about(
        "A local torchvision inception_v3 state dict, for standard FID.", None
    )
    data_report: Path = about(
        "Where the full list of the data's problems goes (when more than 20: the rest).",
        DATA_REPORT,
    )
    a: Path | None = about("A translator's A images (with --b): FID of G(A) against B.", None)
    b: Path | None = about("A translator's B images (with --a).", None)
    reverse: str | None = about(
        "The B->A translator of --model (with --a/--b): FID both ways, cycle errors.", None
    )
    size: int = about("With --a/--b: images centre-cropped to SIZE x SIZE.", 256)
    seed: int = about("Seed of the generated images.", 0)
    device: str = device_field()
    batch_size: int = about("Images per batch through the generator and the features.", 64)

    @property
    def translator(self) -> bool:
        """Whether this measures a translator (``--a``/``--b``) rather than a generator."""
        return self.a is not None or self.b is not None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("a", "b"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        if self.translator:
            self._check_translator()
            return
        if self.reverse is not None:
            raise PosterforgeError("--reverse measures a translator: give --a DIR and --b DIR")
        if self.data is None:
            raise PosterforgeError("name the real images with --data DIR")
        for name in ("data", "labels", "inception_weights", "data_report"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "only", _names(self.only))
        if not self.data.is_dir():
            raise PosterforgeError(f"--data {self.data}: folder not found")
        if self.labels is not None and not self.labels.is_file():
            raise PosterforgeError(f"--labels {self.labels}: file not found")
        if self.n < 1:
            raise PosterforgeError("-n must be at least 1")
        at_least(self.max_real, 1, "--max-real")
        at_least(self.batch_size, 1, "batch_size")
        check_device(self.device)

    def _check_translator(self) -> None:
        for name in ("a", "b"):
            value = getattr(self, name)
            if value is None:
                raise PosterforgeError("a translator is measured on two folders: give --a and --b")
            if not value.is_dir():
                raise PosterforgeError(f"--{name} {value}: folder not found")
        if self.data is not None or self.labels is not None or self.only:
            raise PosterforgeError(
                "--data, --labels and --label measure a generator; a translator takes --a, --b"
            )
        if self.inception_weights is not None:
            object.__setattr__(self, "inception_weights", Path(self.inception_weights))
        at_least(self.size, 8, "--size")
        at_least(self.batch_size, 1, "batch_size")
        check_device(self.device)


def _names(only: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``("a,b", "c")`` or ``"a,b"`` as ``("a", "b", "c")``, each once."""
    items = [only] if isinstance(only, str) else list(only or ())
    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    return tuple(dict.fromkeys(names))
