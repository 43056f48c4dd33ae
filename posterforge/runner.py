"""The one runner of a translate run, whatever its inputs: images and videos are two kinds of
:class:`Sink` (:class:`~posterforge.image_pipeline.ImageRunner`,
:class:`~posterforge.video.translate.VideoRun`); what they share is here.

    Runner.records(): stale temps removed ─► every sink's checks and outputs record reserved
    (before any work) ─► per sink: screen (in the way / outside --out / exists: skipped) ─►
    sink.run(screened) ─► its outputs record completed ─► Records

The runner owns the order of work, the skip rule, the outputs record (:mod:`posterforge.outputs`)
and the stale-file clean-up; a sink owns how its outputs are made and what it resumes (a video's
finished segments). This module imports neither kind, so neither imports the other.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from posterforge.atomic import Claim, claim, remove_stale
from posterforge.outputs import reserve
from posterforge.records import FAILED, SKIPPED, Record

if TYPE_CHECKING:
    from posterforge.inputs import Job

Identity = tuple[int, int, int, int]
EXISTS = "output exists (use --overwrite)"


@dataclass(frozen=True)
class Outputs:
    """One group of a sink's outputs in the outputs record: all made with ``settings``."""

    dests: Sequence[Path]
    settings: Mapping[str, Any]
    shown: Mapping[str, tuple[str, str]] | None = None  # how the user named a setting


@dataclass(frozen=True)
class Todo:
    """An output to make; ``seen``: the file it replaces (``--overwrite``), as it was planned."""

    src: Job
    dest: Path
    seen: Identity | None = None


class Sink(Protocol):
    """One kind of input and output. ``root``: the folder its outputs are recorded under."""

    pairs: Sequence[tuple[Job, Path]]
    overwrite: bool

    @property
    def root(self) -> Path: ...

    def outputs(self) -> Iterator[Outputs]:
        """Check what can be checked before work (raise :class:`PosterforgeError`), group by
        group, yielding each group for the outputs record as it passes."""
        ...

    def run(self, items: Iterator[Todo | Record]) -> Iterator[Record]:
        """Make the outputs of ``items``; a Record among them is the runner's verdict (skipped,
        failed) to report in its place."""
        ...


class Runner:
    """Runs ``sinks`` in order under one outputs record and one skip rule."""

    def __init__(self, sinks: Sequence[Sink]):
        self.sinks = [s for s in sinks if s.pairs]
        self.started = time.time()

    def records(self) -> Iterator[Record]:
        for folder in dict.fromkeys(d.parent for s in self.sinks for _, d in s.pairs):
            remove_stale(folder, since=self.started)  # only files whose writer is provably gone
        # existing outputs are skipped only when these settings made them (else refused up front)
        completed: list[list[Callable[[], None]]] = []
        for sink in self.sinks:
            completed.append([
                reserve(sink.root, o.settings, o.dests, overwrite=sink.overwrite, shown=o.shown)
                for o in sink.outputs()
            ])  # fmt: skip
        for sink, done in zip(self.sinks, completed, strict=True):
            yield from sink.run(screen(sink.pairs, sink.root, sink.overwrite))
            for finish in done:
                finish()


def screen(
    pairs: Sequence[tuple[Job, Path]], root: Path, overwrite: bool
) -> Iterator[Todo | Record]:
    """The pairs to make, lazily; a record instead for an output that cannot be written or
    exists (and ``overwrite`` is off)."""
    root, inside = root.resolve(), {}
    for src, dest in pairs:
        if (problem := _unwritable(dest, root, inside)) is not None:
            yield Record(str(src.src), None, FAILED, problem)
        elif (seen := identity(dest)) is not None and not overwrite:
            yield Record(str(src.src), str(dest), SKIPPED, EXISTS)
        else:
            yield Todo(src, dest, seen)


def claim_output(todo: Todo) -> Claim | Record | None:
    """Lock ``todo``'s output before its input is read, so runs that share an output folder
    split the work. The lock: ours to write. None: another live run holds it. A Record: it
    cannot be written, or there is nothing to do (another run wrote it since it was screened)."""
    src, dest = str(todo.src.src), todo.dest
    try:
        held = claim(dest)
    except OSError as e:
        why = e.strerror or str(e)
        if e.errno == errno.EEXIST and e.filename:
            why = f"{e.filename} is {why}"
        return Record(src, None, FAILED, f"cannot write {dest}: {why}")
    if held is None:
        return None
    if (now := identity(dest)) is not None and now != todo.seen:
        held.release()
        if dest.is_dir():
            return Record(src, None, FAILED, _in_the_way(dest))
        return Record(src, str(dest), SKIPPED, "finished by another process")
    return held


def identity(path: Path) -> Identity | None:
    """What tells one version of a file from the next (a rename brings a new inode), or None
    when there is no file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _unwritable(dest: Path, root: Path, inside: dict[Path, str | None]) -> str | None:
    """Why ``dest`` must not be written, or None: a folder in its place, or a symlinked folder
    that would put it outside the output folder ``root`` (``inside`` caches folders' verdicts)."""
    if dest.is_dir():
        return _in_the_way(dest)
    folder = dest.parent
    if folder not in inside:
        try:
            real = folder.resolve()
            bad = None if real.is_relative_to(root) else f"its folder leads to {real}"
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
            bad = f"its folder cannot be resolved ({getattr(e, 'strerror', None) or e})"
        inside[folder] = bad
    if (bad := inside[folder]) is not None:
        return f"cannot write {dest}: {bad}, outside the output folder {root} (a symlink)"
    return None


def _in_the_way(dest: Path) -> str:
    return f"cannot write {dest}: a folder of that name is in the way"
