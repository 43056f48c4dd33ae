"""A recipe's ``precision`` for families: checked once, turned into autocast, and a note where it
is slow. fp32 is every first-party recipe's default; "bf16" autocasts the forward passes to
bfloat16 while weights, optimiser state and penalties (double backwards) stay fp32, so
checkpoints and exports do not change."""

from __future__ import annotations

import logging

import torch

PRECISIONS = ("fp32", "bf16")


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
