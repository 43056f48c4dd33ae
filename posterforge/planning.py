"""What a translate run will do, known before any image is read: the (input, output) pairs,
in order, with collisions, shards and an output folder inside the inputs handled; and the frame
sizes of the whole job, from image headers alone, for the engine's compile decision."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from posterforge.errors import PosterforgeError
from posterforge.images import IMAGE_SUFFIXES
from posterforge.inputs import Job, discover, in_shard, parse_shard, unique_outputs
from posterforge.jobs.common import check_format
from posterforge.sizing import Size

if TYPE_CHECKING:
    from posterforge.engine import Engine


class NoImagesError(PosterforgeError):
    """The inputs hold no image to translate; the message says why."""


def plan(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    fmt: str | None = None,
    shard: str | None = None,
    stdin: TextIO | None = None,
    null: bool = False,
    relative_to: str | Path | None = None,
    strict: bool = False,
) -> list[tuple[Job, Path]]:
    """The (input, output path) pairs of a run, in order; raises if two inputs share an output.

    Raises before any image is read when ``out`` cannot be a folder. ``strict`` (what the command
    line wants) also makes a named input that does not exist an error, and raises
    :class:`NoImagesError` when no image is found at all (an empty shard is not an error).
    ``null`` and ``relative_to`` are passed to :func:`~posterforge.inputs.discover`. An ``out``
    with a video suffix that is no folder names the output file of one video input.
    """
    if fmt is not None:
        fmt = check_format(fmt)
    from posterforge.video.containers import names_video_file

    if names_video_file(out):
        from posterforge.video.plan import plan_file

        return plan_file(inputs, Path(out), strict=strict)
    _check_out_dir(Path(out))
    if relative_to is not None and not os.path.isdir(relative_to):
        raise PosterforgeError(f"--relative-to {relative_to}: no such folder")
    if strict:
        for item in inputs:
            if not (isinstance(item, str) and item == "-") and not os.path.lexists(item):
                raise PosterforgeError(f"{item}: no such file or folder")
    # An output folder inside an input folder must not feed our own outputs back in on a re-run.
    out_dir = Path(out).resolve()
    seen = {"found": 0, "inside_out": 0}

    def not_ours(job: Job) -> bool:
        seen["found"] += 1
        if job.src.resolve().is_relative_to(out_dir):
            seen["inside_out"] += 1
            return False
        return True

    jobs: Iterable[Job] = filter(
        not_ours, discover(inputs, stdin=stdin, null=null, relative_to=relative_to)
    )
    if shard is not None:
        try:
            k, n = parse_shard(shard)
        except ValueError as e:
            raise PosterforgeError(str(e)) from None
        jobs = (j for j in jobs if in_shard(j, k, n))
    pairs = list(unique_outputs(jobs, Path(out), fmt))
    if strict and seen["found"] == seen["inside_out"]:
        raise NoImagesError(_why_empty(inputs, out, seen["inside_out"]))
    return pairs


def _check_out_dir(out: Path) -> None:
    """``out`` must be a folder, or creatable as one (no file in the way)."""
    where = out.absolute()
    existing = next((p for p in (where, *where.parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        if existing == where:
            raise PosterforgeError(f"--out {out}: is a file, not a folder")
        raise PosterforgeError(f"--out {out}: {existing} is a file, not a folder")


def _why_empty(inputs: Sequence[str | Path], out: str | Path, inside_out: int) -> str:
    if inside_out:
        return (
            f"no images found in the inputs: the only {inside_out} image(s) are inside "
            f"--out {out}, which is never read as input (outputs are not translated again)"
        )
    named = [str(i) for i in inputs]
    if named == ["-"]:
        return "no images found in the inputs: no paths were read from stdin"
    shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    from posterforge.video.containers import VIDEO_SUFFIXES

    suffixes = " ".join(sorted(IMAGE_SUFFIXES))
    videos = " ".join(sorted(VIDEO_SUFFIXES))
    return (
        f"no images found in the inputs: no file in {shown} ends in {suffixes}, "
        f"nor is a video ({videos})"
    )


def expect_job(
    engine: Engine, sources: Sequence[Path], batch_size: int, size: Size | None
) -> None:
    """Tell the engine the frame sizes of the whole job (finished outputs included, so that a
    resumed run decides to compile exactly as the first run did). Reads image headers only."""
    from collections import Counter

    from posterforge.images import probe_size

    counts: Counter[tuple[int, int]] = Counter()
    for src in sources:
        if (wh := probe_size(src)) is not None:
            w, h = wh if size is None else size.target(*wh)
            counts[(h, w)] += 1
    for hw, images in counts.items():
        engine.expect(batch_size, hw, images)


