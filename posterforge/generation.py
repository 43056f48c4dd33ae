"""A generate run: images of any generator family into files and grids.

    GenerateJob ─► start(): resolve and build the model once, check every condition ─►
    GenerateRun.records(): per condition, blocks of indices (claimed) ─► noise, model, uint8
    (:mod:`posterforge.sampling`) ─► encode + atomic rename (worker threads) ─► one Poster each

The core knows seeds, batches, files and grids; what a condition (``--genre horror+comedy``)
means belongs to the family (:class:`posterforge.models.BuiltGenerator`). Image ``i`` of a run
with seed ``s`` always gets the same noise vector, whatever the batch size, ``-n`` or condition,
so the same seed gives the same images on the same device, a re-run skips what exists
(``overwrite`` to redo), and image ``i`` of two conditions differs only by its condition.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import Claim, check_writable, claim, held_by_other
from posterforge.context import Context
from posterforge.images import FORMATS, encode_atomic
from posterforge.jobs.generate import GenerateJob
from posterforge.records import OK, SKIPPED, Status
from posterforge.sampling import (  # noqa: F401  (the names callers of this module use)
    LoadedGenerator,
    batch_of,
    generate_images,
    load_generator,
    noise,
    sample,
    to_uint8,
)

if TYPE_CHECKING:
    import torch




@dataclass
class Poster:
    """One generated image; ``--json`` prints one of these per line (``condition`` is the canonical
    spelling of what was asked for, empty for an unconditional generator)."""

    path: str | None
    condition: str
    index: int
    seed: int
    status: Status = OK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def poster_path(out: Path, caption: str, index: int, fmt: str, seed: int | None = None) -> Path:
    """Where poster ``index`` of a condition goes: ``CAPTION-00000.png`` (``00000.png`` for an
    unconditional generator); a poster of ``--seeds`` by its ``seed``: ``CAPTION-seed00007.png``."""
    prefix = f"{file_stem(caption)}-" if caption else ""
    name = f"{index:05d}" if seed is None else f"seed{seed:05d}"
    return out / f"{prefix}{name}{FORMATS[fmt].suffix}"


def file_stem(caption: str) -> str:
    """A file-name-safe form of a caption (``horror+comedy:0.5`` -> ``horror+comedy-0.5``)."""
    return re.sub(r"[^A-Za-z0-9+._-]", "-", caption)


def start(
    job: GenerateJob,
    ctx: Context | None = None,
    *,
    generator: LoadedGenerator | None = None,
) -> GenerateRun:
    """Resolve and build the model (once), check every condition against it, and plan the
    outputs; configuration errors (unknown model or condition) raise here, before anything is
    written. Then :meth:`GenerateRun.records` does the work. ``generator``: a model loaded
    already (``job.model``, ``device`` and ``precision`` are then not used). With
    ``job.from_latent``: :func:`posterforge.rerender.start_from_latent` plans that run."""
    if job.from_latent is not None:
        raise ValueError("a job with from_latent: use posterforge.rerender.start_from_latent")
    if job.out is not None:  # before the model loads: a read-only --out fails in a second
        check_writable(job.out)
    gen = generator or load_generator(
        job.model, device=job.device, precision=job.precision, compile=job.compile,
        backend=job.backend, ctx=ctx,
    )  # fmt: skip
    specs: list[str | None] = list(job.conditions) or [None]
    captions = [gen.caption(c) for c in specs]  # unknown labels fail here, up front
    jobs = [
        _ConditionJob(gen, spec, caption, job, gen.conditions(spec, 1))
        for spec, caption in zip(specs, captions, strict=True)
    ]
    run = GenerateRun(job, gen, jobs)
    engine = gen.engine
    if engine.compile == "auto" or engine.backend != "torch":  # the whole job: a resumed run
        run._expect()  # decides alike
    if engine.backend != "torch":
        engine.decide_paths()  # before the outputs record, which names the path
    return run


@dataclass(eq=False)
class GenerateRun:
    """A planned generate run, its model built: :meth:`records` does the work."""

    job: GenerateJob
    generator: LoadedGenerator
    conditions: list[_ConditionJob]

    def records(self) -> Iterator[Poster]:
        """One :class:`Poster` per image as it is written (or found written already)."""
        job, gen, jobs = self.job, self.generator, self.conditions
        completed = None
        if job.out is not None:
            from posterforge.atomic import remove_stale
            from posterforge.outputs import reserve

            remove_stale(job.out)  # temp files of a killed run (dead writers only)
            # existing images are skipped only when these settings made them (else refused now)
            dests = [d for c in jobs for i in range(job.n) if c.mine(i) and (d := c.dest(i))]
            completed = reserve(
                job.out, _settings(job, gen), dests, overwrite=job.overwrite,
                shown={"model": ("model", job.model)},
            )  # fmt: skip
        sheets: list[tuple[str, list[Any]]] = []
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pf-encode") as pool:
            for c in jobs:
                c.pool = pool
                count = job.n if job.out is not None else min(job.n, job.grid_max)
                yield from c.run(count, job.grid_max if job.grid is not None else 0)
                sheets.append((c.caption, c.sheet))
        if completed is not None:
            completed()
        if job.grid is not None:
            from posterforge.sheet import labelled_grid

            labelled_grid(sheets, job.grid, columns=8)

    def _expect(self) -> None:
        job, gen, first = self.job, self.generator, self.conditions[0]
        count = job.n if job.out is not None else min(job.n, job.grid_max)  # per condition
        count = sum(1 for i in range(count) if first.mine(i))  # this process's share
        dim = None if first.row is None else int(first.row.shape[1])
        batch = min(job.batch_size, max(count, 1))
        gen.engine.expect_samples(batch, gen.z_dim, dim, count * len(self.conditions))


def _settings(job: GenerateJob, gen: LoadedGenerator) -> dict[str, Any]:
    """What made an image: a re-run with other settings is refused, not skipped."""
    settings = {
        "command": "generate",
        "model": gen.engine.model_id,
        "seed": job.seed if job.seeds is None else "per poster",
        "truncation": job.truncation,
        "format": job.fmt,
        "precision": gen.engine.precision,
    }
    if (backend := gen.engine.choice.record()) is not None:  # not torch: other bytes
        settings["backend"] = backend
    return settings


def generate_iter(job: GenerateJob, ctx: Context | None = None) -> Iterator[Poster]:
    """:func:`start` then :meth:`GenerateRun.records`."""
    yield from start(job, ctx).records()


@dataclass(eq=False)
class _ConditionJob:
    """The images of one condition: compute in batches, encode on the pool while the next batch
    computes (at most two batches in flight), keep the first ``grid_max`` for the sheet."""

    gen: LoadedGenerator
    spec: str | None
    caption: str
    job: GenerateJob
    row: torch.Tensor | None  # the condition, parsed once (None when unconditional)
    pool: ThreadPoolExecutor | None = None  # set when the run starts

    def __post_init__(self) -> None:
        self.sheet: list[Any] = []
        self.part = self.job.part

    def dest(self, i: int) -> Path | None:
        if self.job.out is None:
            return None
        seed = self.job.seeds[i] if self.job.seeds is not None else None
        return poster_path(self.job.out, self.caption, i, self.job.fmt, seed)

    def mine(self, i: int) -> bool:
        return (i // self.job.batch_size) % self.part[1] == self.part[0]

    def run(self, n: int, grid_max: int) -> Iterator[Poster]:
        """Batches are always the same blocks of indices (``[0, B)``, ``[B, 2B)``, ...), computed
        whole: a convolution's last bits depend on what shares its batch, so a resumed run, a
        shard and an uninterrupted run must batch alike to write the same bytes.

        Each block to write is claimed first (a lock on its first file), so runs started
        together on one folder share the work: a block another live run holds is put aside and,
        once that run lets go, skipped (written there) or made here."""
        pending: deque[tuple[Poster, Future[None] | None, Claim | None]] = deque()
        try:
            yield from self._blocks(n, grid_max, pending)
        finally:  # closed early (Ctrl-C): what is in flight lands, and its claims are let go
            for _poster, fut, held in pending:
                with suppress(Exception):
                    if fut is not None:
                        fut.result()
                if held is not None:
                    held.release()

    def _blocks(self, n: int, grid_max: int, pending: deque) -> Iterator[Poster]:
        waiting: list[int] = []
        for start in range(0, n, self.job.batch_size):
            if self._block(start, n, grid_max, pending) is False:
                waiting.append(start)
            while len(pending) > self.job.batch_size:
                yield _finish(*pending.popleft())
        while waiting:
            free = [s for s in waiting if not held_by_other(self._lock_of(s))]
            if not free:
                time.sleep(0.05)
                continue
            waiting = [s for s in waiting if s not in free]
            for start in free:  # written by the other run meanwhile, or left to us
                if self._block(start, n, 0, pending) is False:
                    waiting.append(start)
                while len(pending) > self.job.batch_size:
                    yield _finish(*pending.popleft())
        while pending:
            yield _finish(*pending.popleft())

    def _lock_of(self, start: int) -> Path:
        dest = self.dest(start)
        assert dest is not None
        return dest

    def _block(self, start: int, n: int, grid_max: int, pending: deque) -> bool:
        """The block of indices from ``start``: computed when it has images to write or to show,
        its records queued on ``pending``. False when another live run holds it (its images for
        the grid are taken all the same)."""
        idx = range(start, min(start + self.job.batch_size, n))
        shown = [i for i in idx if i < grid_max]  # the grid shows every index
        if not self.mine(start) and not shown:
            return True
        dests = {i: self.dest(i) for i in idx}
        overwrite = self.job.overwrite
        todo = [i for i in idx if (d := dests[i]) is not None and (overwrite or not d.exists())]
        if not self.mine(start):  # another process's batch, run here for the grid alone
            todo = []
        held = _claim(self._lock_of(start)) if todo else None
        if todo and held is None:
            todo = []  # another live run makes this block now: come back to it
        elif held is not None and not overwrite:  # ours now: another run may have just made it
            todo = [i for i in todo if not dests[i].exists()]  # type: ignore[union-attr]
            if not todo:
                held.release()
                held = None
        try:
            images = dict(zip(idx, self._compute(list(idx)), strict=True)) if todo or shown else {}
        except BaseException:
            if held is not None:
                held.release()
            raise
        self.sheet += [images[i] for i in shown]
        if not self.mine(start):
            return True
        if held is None and any(d is not None and not d.exists() for d in dests.values()):
            return False
        for i in idx:
            poster, fut = self._write(i, dests[i], images.get(i), i in todo)
            pending.append((poster, fut, held if i == idx[-1] else None))
        return True

    def _write(
        self, i: int, dest: Path | None, image: Any, write: bool
    ) -> tuple[Poster, Future[None] | None]:
        fut = None
        if write:
            assert self.pool is not None
            fut = self.pool.submit(encode_atomic, image, dest, fmt=self.job.fmt)
        status = OK if write or dest is None else SKIPPED
        seed, _ = self.job.address(i)
        return Poster(dest and str(dest), self.caption, i, seed, status), fut

    def _compute(self, indices: list[int]) -> Any:
        from posterforge.engine import Engine

        addresses = [self.job.address(i) for i in indices]
        batch = batch_of(self.gen, self.row, addresses, self.job.truncation)
        return Engine.to_uint8(batch).numpy()


def _claim(dest: Path) -> Claim | None:
    """The lock on a block (see :func:`posterforge.atomic.claim`); a failure to make it (a full
    disk, a read-only folder) names the file the block would write."""
    try:
        return claim(dest)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(dest)) from None


def _finish(poster: Poster, fut: Future[None] | None, held: Claim | None = None) -> Poster:
    try:
        if fut is not None:
            fut.result()  # an encode error (disk full, ...) surfaces here, in order
    finally:
        if held is not None:  # the block's last image: let other runs see it done
            held.release()
    return poster
