"""``posterforge warmup``: options into a :class:`~posterforge.jobs.warmup.WarmupJob`, run by
:func:`posterforge.warmup.run_warmup` (what ``posterforge.warmup`` calls), the result on stderr."""

from __future__ import annotations

import sys

import typer

from posterforge.cli.jobs import Opt, job_command
from posterforge.jobs.warmup import WarmupJob

OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "style": Opt(str | None, typer.Option("--style", "-s")),
    "model": Opt(str | None, typer.Option("--model", "-m")),
    "size": Opt(str | None, typer.Option()),
    "batch_size": Opt(int | None, typer.Option("--batch-size", "-b", min=1)),
    "device": Opt(str, typer.Option()),
    "precision": Opt(str, typer.Option()),
    "backend": Opt(str, typer.Option()),
}


def run(job: WarmupJob) -> None:
    """Compile a model ahead of time for one frame size: [bold]posterforge warmup --style
    vintage --size 256x256[/].

    Later runs of that model, size, batch size, device and precision compile from the cache, and
    [bold]--compile auto[/] compiles them from a few hundred frames on (a thousand otherwise).
    """
    from posterforge import warmup as warm  # module look-ups: tests replace its functions

    if job.size is not None and (note := warm.eager_note(job.size)) is not None:
        print(f"posterforge: note: {note}", file=sys.stderr)  # before the minutes of compiling
    done = warm.run_warmup(job)
    what = f"{job.style} at {job.size}" if job.style is not None else str(job.model)
    shape = "x".join(map(str, done.shape))
    if done.precision:
        print(f"posterforge: precision {done.precision}", file=sys.stderr)
    for why in done.calibration:  # the timings the calibration chose by
        print(f"posterforge: calibration {why}", file=sys.stderr)
    if done.backend.startswith("backend openvino"):
        print(f"{what} (batch shape {shape}): {done.backend}; compiled by OpenVINO, in its cache",
              file=sys.stderr)  # fmt: skip
        return
    how = "already in the cache" if done.cached else "now in the cache"
    tail = f" ({done.backend})" if done.backend else ""
    print(f"compiled {what} (batch shape {shape}) in {done.seconds:.1f} s; {how}{tail}",
          file=sys.stderr)  # fmt: skip


warmup = job_command(WarmupJob, OPTIONS, run)
