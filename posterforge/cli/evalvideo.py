"""``posterforge eval-video``: a thin layer over :func:`posterforge.api.evaluate_video`.

The arguments and options are :class:`~posterforge.jobs.evalvideo.EvalVideoJob`'s fields (and
``--json``); progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from posterforge.cli.jobs import Opt, job_command, shown
from posterforge.jobs.evalvideo import EvalVideoJob

if TYPE_CHECKING:
    from posterforge.evaluation.temporal import FlickerReport

OPTIONS = {  # how the command line spells each field of the job (whose help it shows)
    "original": Opt(Path, typer.Argument()),
    "translated": Opt(Path, typer.Argument()),
    "scene_threshold": Opt(float, typer.Option()),
}
# how the records are shown: not part of the job
SHOWN = shown("One JSON record on stdout.")


def run(job: EvalVideoJob, *, as_json: bool) -> None:
    """Measure the flicker a translation added: [bold]posterforge eval-video clip.mp4
    clip-vintage.mp4[/] (videos or folders of frames, frame for frame). The flow-warped error
    (Lai et al. 2018) of the translation and of the clip, per shot, and their ratio (1: no
    flicker added). Needs the video-metrics extra."""
    from posterforge.cli.output import count_progress
    from posterforge.evaluation.temporal import measure_clips

    with count_progress("eval-video", unit="frames") as progress:
        report = measure_clips(job, progress)
    if as_json:
        print(json.dumps(report.as_dict()), flush=True)
    else:
        _print_report(report)


evaluate_video = job_command(EvalVideoJob, OPTIONS, run, extras=SHOWN)
evaluate_video.__name__ = "evaluate_video"


def _ratio(r: float | None) -> str:
    return "   n/a" if r is None else f"{r:6.2f}"


def _print_report(report: FlickerReport) -> None:
    w, h = report.size
    print(f"{report.translated} against {report.original}: {report.frames} frames of {w}x{h}, "
          f"{len(report.shots)} shot(s), {report.pairs} frame pairs")  # fmt: skip
    print(f"flow: {report.flow}")
    print(f"warped error  output {report.output:.6f}  input {report.input:.6f}  "
          f"ratio {_ratio(report.ratio).strip()}  added {report.added:+.6f}")  # fmt: skip
    if len(report.shots) > 1:
        print(f"{'shot':>4}  {'frames':>13}  {'output':>9}  {'input':>9}  {'ratio':>6}  kept")
        for n, s in enumerate(report.shots, 1):
            span = f"{s.start}-{s.end - 1}"
            print(f"{n:4d}  {span:>13}  {s.output:9.6f}  {s.input:9.6f}  {_ratio(s.ratio)}  "
                  f"{s.pixels:4.0%}")  # fmt: skip
