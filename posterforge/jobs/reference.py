"""docs/api.md and the Python API's docstrings, generated from the jobs: each keyword of
``posterforge.translate``, ``generate``, ``morph``, ``frames``, ``train``, ``evaluate``,
``api.warmup`` and of ``training.run.resume`` and ``export`` is a job field, with its type,
default and description written once, in the job.

Regenerate the page with ``python -m posterforge.jobs.reference > docs/api.md``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable

from posterforge.jobs.common import field_help

# (API function, job, what the function returns, how its keywords differ from the fields)
_PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("posterforge.translate", "posterforge.jobs.translate:TranslateJob",
     "one Record per input", ""),
    ("posterforge.generate", "posterforge.jobs.generate:GenerateJob",
     "one Poster per image", ""),
    ("posterforge.project", "posterforge.jobs.project:ProjectJob",
     "one Projected per poster (reconstruction, latent, record paths, losses, ranking)",
     "`posters` and `out` come first; `as_labels` is a list of labels."),
    ("posterforge.mix", "posterforge.jobs.mix:MixJob",
     "a MixGrid (the file, the cells as uint8, the layers mixed)",
     "`rows`, `cols` (seed lists or a string such as 1,5-9) and `out` come first."),
    ("posterforge.morph", "posterforge.jobs.morph:MorphJob",
     "a MorphRecord: the video, ok or skipped, its frames and the frames resumed",
     "`seeds` may be a list or a string (1,2,3); `conditions` are the stops' genres."),
    ("posterforge.frames", "posterforge.jobs.frames:FramesJob",
     "one FrameRecord per frame written or skipped, then one FilmReport per film", ""),
    ("posterforge.train", "posterforge.jobs.train:TrainJob",
     "the stored weight file (None on DDP ranks other than 0)",
     "It takes `kind` (translator or generator) and `arch` (the family's name, default: the "
     "kind's first) instead of `family`; `progress` receives the steps and notes."),
    ("posterforge.training.run.resume", "posterforge.jobs.train:ResumeJob",
     "the stored weight file, or None when the run has nothing left to do", ""),
    ("posterforge.training.run.export", "posterforge.jobs.train:ExportJob",
     "the stored weight file", ""),
    ("posterforge.evaluate", "posterforge.jobs.evaluate:EvalJob",
     "an EvalReport (FID, KID, precision/recall, label consistency)",
     "`progress(done, total)` counts the images through the feature extractor."),
    ("posterforge.evaluate_video", "posterforge.jobs.evalvideo:EvalVideoJob",
     "a FlickerReport (the warped errors of output and input, their ratio, per shot)",
     "`progress(done, total)` counts the frames."),
    ("posterforge.api.warmup", "posterforge.jobs.warmup:WarmupJob",
     "a Warmed: the batch shape compiled, the seconds it took, whether the cache held it", ""),
    ("posterforge.report", "posterforge.jobs.report:ReportJob", "the HTML file written", ""),
    ("posterforge.list_runs", "posterforge.jobs.report:RunsJob",
     "one RunInfo per run found (`as_dict()`: what `runs --json` prints)", ""),
    ("posterforge.export_weights", "posterforge.jobs.weights:WeightsExportJob",
     "an Exported (the file, and how it matched torch)", ""),
)  # fmt: skip


def _job(spec: str) -> type:
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _type_name(tp: object) -> str:
    text = str(tp).replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")
    text = text.replace("posterforge.sizing.", "")
    return getattr(tp, "__name__", None) if isinstance(tp, type) else text  # type: ignore[return-value]


def fields_table(job: type) -> str:
    """A Markdown table of a job's fields: name, type, default, description."""
    try:
        hints: dict[str, object] = typing.get_type_hints(job)
    except NameError:  # a type imported for type checkers only: the annotations as written
        hints = {f.name: f.type for f in dataclasses.fields(job)}
    rows = ["| keyword | type | default | what it does |", "|---|---|---|---|"]
    required = [f for f in dataclasses.fields(job) if f.default is dataclasses.MISSING]
    for f in sorted(dataclasses.fields(job), key=lambda f: f not in required):  # required first
        if not f.init:  # worked out by the job itself, not a keyword
            continue
        default = "required" if f.default is dataclasses.MISSING else f"`{f.default!r}`"
        if f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        kind = _type_name(hints[f.name]).replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{kind}` | {default} | {field_help(f)} |")
    return "\n".join(rows)


def document(function: Callable[..., object], job: type) -> None:
    """Append the job's fields to an API function's docstring (``help(posterforge.translate)``)."""
    fields = "\n".join(
        f"    ``{f.name}``: {field_help(f)}" for f in dataclasses.fields(job) if field_help(f)
    )
    function.__doc__ = f"{function.__doc__ or ''}\n\n    Keywords:\n\n{fields}\n"


def render_api_reference() -> str:
    parts = [
        "# Python API",
        "",
        "<!-- generated by `python -m posterforge.jobs.reference > docs/api.md`: edit the jobs "
        "in posterforge/jobs/, not this page -->",
        "",
        "Every command that runs a model is a typed job (a frozen dataclass in "
        "`posterforge/jobs/`) checked once when it is made. The CLI parses its options into the "
        "job and calls the same function a Python user calls; each keyword below is a field of "
        "the job, with the same meaning as the CLI option of that name.",
        "",
    ]
    for function, spec, returns, differs in _PAGES:
        job = _job(spec)
        doc = (job.__doc__ or "").split(">>>")[0]  # the docstring's text, not its doctest
        about = " ".join(f"{doc} {differs}".split())
        article = "an" if job.__name__[0] in "AEIOU" else "a"
        parts += [
            f"## {function}",
            "",
            f"`{function}(...)` makes {article} `{job.__name__}` and runs it; it returns "
            f"{returns}. {about}",
            "",
            fields_table(job),
            "",
        ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render_api_reference(), end="")
