"""``posterforge morph``: options into a :class:`~posterforge.jobs.morph.MorphJob`, run by
:func:`posterforge.morphing.start` (what ``posterforge.morph`` calls), the video's record shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from posterforge.cli.exits import EXIT_OK
from posterforge.cli.jobs import Opt, job_command, shown
from posterforge.jobs.morph import MorphJob

if TYPE_CHECKING:
    from posterforge.morphing import MorphRecord

OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "conditions": Opt(list[str] | None, typer.Option("--genre", "--label", "-g"), default=None,
                      to_field=tuple),
    "out": Opt(Path | None, typer.Option("--out", "-o")),
    "model": Opt(str, typer.Option("--model", "-m")),
    "seeds": Opt(str, typer.Option(metavar="LIST"), default="0"),
    "seconds": Opt(float, typer.Option()),
    "fps": Opt(float, typer.Option()),
    "space": Opt(str, typer.Option()),
    "batch_size": Opt(int, typer.Option("--batch-size", "-b")),
    "vcodec": Opt(str | None, typer.Option()),
    "crf": Opt(int | None, typer.Option()),
    "device": Opt(str, typer.Option()),
    "precision": Opt(str, typer.Option()),
    "overwrite": Opt(bool, typer.Option()),
}  # fmt: skip
# how the records are shown: not part of the job
SHOWN = shown("The video's record as JSON on stdout.", "No summary on stderr.")


def run(job: MorphJob, *, as_json: bool, quiet: bool) -> None:
    """A video that morphs between genres and/or seeds: [bold]posterforge morph -g horror -g
    comedy --seeds 1 --seconds 4 --out morph.mp4[/].

    Label weights blend linearly; noise is slerped in z, or w lerped for a model with a W latent
    (StyleGAN). The first and last frames are the stops' posters. An interrupted run resumes
    where it stopped (the same command again); the same arguments write the same bytes. Prints
    the video's path on stdout; progress and the summary go to stderr.
    """
    from posterforge.cli.output import Lines, ProgressLine
    from posterforge.cli.run import drive, engine_line
    from posterforge.morphing import start

    planned = start(job)
    bar = ProgressLine("morph", job.frames, unit="frame") if not quiet and sys.stderr.isatty() \
        else None  # fmt: skip
    lines = Lines(bar)
    if not quiet:
        lines.err(engine_line(planned.generator.engine, job.device, job.batch_size))
    planned.on_frames = lines.advance_by

    def report(rec: MorphRecord) -> None:
        lines.close()
        lines.out(json.dumps(rec.as_dict()) if as_json else rec.output)
        if quiet:
            return
        if rec.status == "skipped":
            lines.err(f"{rec.output}: made by the same settings already (--overwrite to redo)")
            return
        again = f", {rec.resumed} resumed" if rec.resumed else ""
        lines.err(f"morphed {rec.frames} frames ({rec.space} space{again}) in {rec.seconds} s")

    def interrupted() -> None:
        lines.close()
        lines.err("posterforge: interrupted: run the same command again to resume")

    drive(planned.records(), report, interrupted)
    lines.close()
    raise typer.Exit(EXIT_OK)


morph = job_command(MorphJob, OPTIONS, run, extras=SHOWN, left_out=("compile",))
