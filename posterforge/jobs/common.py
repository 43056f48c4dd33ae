"""What several jobs share: the choices of precision, compilation and device, and the checks that
turn a user's value into one of them (one line naming the option on a bad value)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any, Literal, TypeVar, get_args

from posterforge.errors import PosterforgeError

Precision = Literal["auto", "fp32", "fp16", "bf16"]
CompileMode = Literal["auto", "on", "off"]
AlphaMode = Literal["keep", "drop"]

PRECISIONS: tuple[str, ...] = get_args(Precision)
COMPILE_MODES: tuple[str, ...] = get_args(CompileMode)
ALPHA_MODES: tuple[str, ...] = get_args(AlphaMode)

_DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

T = TypeVar("T", bound=str)


_REQUIRED: Any = dataclasses.MISSING


def about(help: str, default: Any = _REQUIRED) -> Any:
    """A job field with its one-line description: the CLI's help, the API's and docs/api.md's
    text all come from here."""
    return dataclasses.field(default=default, metadata={"help": help})


# The fields every model-running job has, described once.
def device_field() -> Any:
    return about("auto, cpu, cuda, cuda:N or mps.", "auto")


def precision_field() -> Any:
    return about(
        "auto (bf16 where this device computes it natively and a probe finds it within 2 grey "
        "levels of fp32, decided once per machine and model; fp32 elsewhere), fp32, fp16 or "
        "bf16 (autocast).",
        "auto",
    )


def compile_field() -> Any:
    return about("auto (compile when the job is long enough to pay), on or off.", "auto")


def backend_field() -> Any:
    return about(
        "torch (the default until the calibration is measured on a quiet machine), auto (the "
        "path a calibration found fastest on this machine, cached) or openvino (CPU; torch "
        "where it cannot run, with a note).",
        "torch",
    )


def field_help(field: dataclasses.Field) -> str:
    return str(field.metadata.get("help", ""))


class InvalidOption(PosterforgeError):
    """A job field with a value it cannot take: ``invalid quality 0: use 1 to 100`` from Python;
    the CLI names the option as typed instead (``invalid --quality 0: ...``)."""

    def __init__(self, field: str, value: object, hint: str):
        self.field, self.value, self.hint = field, value, hint
        super().__init__(self.naming(field.replace("_", " ")))

    def naming(self, option: str) -> str:
        return f"invalid {option} {self.value!r}: {self.hint}"


def one_of(value: str, allowed: Iterable[str], option: str) -> str:
    """``value`` when it is one of ``allowed``, else one line naming ``option`` and the choices."""
    choices = tuple(allowed)
    if value not in choices:
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
        raise InvalidOption(option, value, f"use {listed}")
    return value


def check_device(spec: str) -> str:
    """The shape of a ``--device`` value (whether it is present here is the engine's to say)."""
    if not _DEVICE_RE.fullmatch(spec):
        raise PosterforgeError(f"invalid device {spec!r}: use auto, cpu, cuda, cuda:N or mps")
    return spec


def at_least(value: int | None, low: int, option: str) -> None:
    if value is not None and value < low:
        raise InvalidOption(option, value, f"use {low} or more")


def in_range(value: int | None, low: int, high: int, option: str) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidOption(option, value, f"use {low} to {high}")


def check_format(fmt: str) -> str:
    """An image format name (``jpg``, ``.PNG``, ...) as the canonical one, or one line."""
    from posterforge.images import FORMATS, format_for

    try:
        return format_for("." + fmt.lower().lstrip("."))
    except ValueError:
        raise PosterforgeError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}") from None


def check_shard(shard: str) -> tuple[int, int]:
    """``K/N`` as (k, n), or one line saying what is wrong with it."""
    from posterforge.inputs import parse_shard

    try:
        return parse_shard(shard)
    except ValueError as e:
        raise PosterforgeError(str(e)) from None
