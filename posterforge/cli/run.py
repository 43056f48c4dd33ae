"""The loop every streaming command shares: report each record whole, and end the same way on
Ctrl-C, SIGTERM or a closed stdout. Plus the device line the model-running commands print."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import typer

from posterforge.cli.signals import HoldSigint, closed_pipe, exit_code, stop

if TYPE_CHECKING:
    from posterforge.engine import Engine

R = TypeVar("R")


def drive(
    records: Iterator[R],
    report: Callable[[R], None],
    on_interrupt: Callable[[], None],
) -> None:
    """Report every record of ``records``. Ctrl-C: the pipeline is closed (the work in flight
    lands on disk), ``on_interrupt`` prints what was done and how to resume, and the command ends
    with 130 (143 for SIGTERM, 129 for SIGHUP, taken the same way). A closed stdout (``| head``):
    the pipeline is closed and the process ends quietly by SIGPIPE, as shell tools do."""
    try:
        with HoldSigint() as sigint:
            try:
                for rec in records:
                    with sigint.held():  # a record is reported whole, Ctrl-C or not
                        report(rec)
            except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP taken as one
                stop(records)
                on_interrupt()
                raise typer.Exit(exit_code(e)) from None
    except BrokenPipeError:
        stop(records)
        closed_pipe()


def engine_line(engine: Engine, device: str, batch: int) -> str:
    """One line: the device, precision and backend path the run uses (and whether ``auto``
    picked them)."""
    import torch

    about = []
    if engine.device.type == "cuda":
        about.append(torch.cuda.get_device_name(engine.device))
    elif engine.device.type == "cpu":
        about.append(f"{torch.get_num_threads()} threads")
    if device == "auto":
        about.append("picked by --device auto")
    where = f"{engine.device} ({', '.join(about)})" if about else str(engine.device)
    # the backend is named when it is not the default torch path, or when something was chosen
    path = "" if engine.choice.plain_torch() else f", {engine.choice.line()}"
    if (strength := getattr(engine, "stabilize", None)) is not None:
        path += (
            f", stabilised {strength:g} (on torch, eager: OpenVINO and compiled graphs cannot "
            "carry its state)"
        )
    return (
        f"posterforge: device {where}, precision {_precision(engine)}{path}, batch size {batch}"
    )


def _precision(engine: Engine) -> str:
    """``fp32`` as asked, or what ``auto`` took and why (``bf16 (auto: native ...)``)."""
    how = getattr(engine, "precision_how", "asked")
    return engine.precision if how == "asked" else f"{engine.precision} ({how})"
