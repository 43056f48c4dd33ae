"""A recipe's ``precision`` for families: checked once, turned into autocast, and a note where it
is slow. fp32 is every first-party recipe's default; "bf16" autocasts the forward passes to
bfloat16 while weights, optimiser state and penalties (double backwards) stay fp32, so
checkpoints and exports do not change.

"auto" (:func:`training_precision`) takes bf16 where the device computes it natively and a
step's images hold at least :data:`AUTO_BF16_PIXELS` pixels (batch x height x width), fp32
elsewhere. The line comes from ``bench/train_precision.py`` and ``bench/train_translator.py`` on
a 2-core AVX-512 (bf16) CPU: bf16 lost at 64x64 x 1 (the CycleGAN's tiny recipe, 0.72x) and at
32x64 x 8 (StyleGAN's, 0.90x), and gained at 64x128 x 8 (the genre cGAN's, 1.09x) and at
256x256 x 1 (the CycleGAN's default, 1.65x). It is a function of the recipe and the device only,
so a resumed run on the machine decides the same."""

from __future__ import annotations

import logging

import torch

PRECISIONS = ("fp32", "bf16", "auto")
AUTO_BF16_PIXELS = 256 * 256  # a step's pixels from which "auto" takes bf16 (see above)


def check_precision(value: str) -> str:
    """``value`` if it names a training precision; a ValueError naming the choices if not."""
    if value not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {value!r}")
    return value


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The context a step's forward passes run in: bf16 autocast, or a disabled one for fp32."""
    bf16 = precision == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def note_if_slow(device: torch.device, precision: str) -> None:
    """Log the note of :func:`posterforge.engine.slow_bf16_note` when bf16 is slow here."""
    from posterforge.engine import slow_bf16_note

    if (note := slow_bf16_note(device, precision)) is not None:
        logging.getLogger("posterforge").warning("posterforge: note: %s", note)


def training_precision(device: torch.device, value: str, pixels: int) -> str:
    """The precision a run trains in for the recipe's ``value`` (``fp32`` or ``bf16`` as
    given; ``auto`` decided from the device and ``pixels``, a step's batch x height x width),
    with one note saying what auto took and why, or that bf16 is slow here."""
    log = logging.getLogger("posterforge")
    if value != "auto":
        note_if_slow(device, value)
        return value
    from posterforge.backends.precision import native_bf16

    native, step = native_bf16(device), f"{pixels} pixels a step"
    if native is None:
        taken, why = "fp32", "no native bf16 here"
    elif pixels < AUTO_BF16_PIXELS:
        taken, why = "fp32", f"native {native}, but {step}, under {AUTO_BF16_PIXELS}"
    else:
        taken, why = "bf16", f"native {native}, {step}"
    log.warning("posterforge: note: precision auto: %s (%s)", taken, why)
    return taken
