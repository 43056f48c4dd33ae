"""The warmup job: what ``posterforge warmup`` (and ``posterforge.warmup``) compiles ahead of
time, checked once when the job is made: a style at one exact frame size, or a generator."""

from __future__ import annotations

from dataclasses import dataclass

from posterforge.backends import BACKENDS, Backend
from posterforge.errors import PosterforgeError
from posterforge.jobs.common import (
    PRECISIONS,
    Precision,
    about,
    at_least,
    check_device,
    device_field,
    one_of,
    precision_field,
)


def frame_size(size: str) -> tuple[int, int]:
    """``WxH`` as (width, height): the frames' exact size, which a warm-up compiles for."""
    from posterforge.sizing import Size

    parsed = Size.parse(size)
    if parsed.width is None or parsed.height is None:
        raise PosterforgeError(
            f"--size {size}: give the frames' exact size as WxH (a shorter side alone leaves the "
            "other side to each input)"
        )
    return parsed.width, parsed.height


@dataclass(frozen=True)
class WarmupJob:
    """Compile ``style``'s translator for frames of ``size`` (``WxH``, the size the frames have
    when they reach the model: after translate's ``--size``), or the generator ``model``, at
    ``batch_size`` on ``device`` with ``precision`` and ``backend`` as the later runs will use
    them (``backend="auto"`` calibrates first). Exactly one of ``style`` and ``model``."""

    style: str | None = about("A style (name or .safetensors file).", None)
    model: str | None = about("A generator (name or .safetensors file).", None)
    size: str | None = about(
        "WxH: the frames' size when they reach the translator (after --size).", None
    )
    batch_size: int | None = about("As the runs will use (their default).", None)
    device: str = device_field()
    precision: Precision = precision_field()
    backend: Backend = about(
        "torch, auto (calibrate first) or openvino, as the runs will use.", "torch"
    )

    def __post_init__(self) -> None:
        one_of(self.backend, BACKENDS, "backend")
        one_of(self.precision, PRECISIONS, "precision")
        check_device(self.device)
        at_least(self.batch_size, 1, "batch_size")
        if (self.style is None) == (self.model is None):
            raise PosterforgeError("name what to compile: --style S --size WxH, or --model M")
        if self.style is not None:
            if self.size is None:
                raise PosterforgeError("--style needs --size WxH: the frames' size")
            frame_size(self.size)
        elif self.size is not None:
            raise PosterforgeError("--size is for --style: a generator's size is its own")
