"""The image sink of translate (:class:`ImageRunner`, run by :mod:`posterforge.runner`, which
screens and records its outputs): decode on worker threads, bucket by size, run the engine on
whole batches, encode and rename atomically on worker threads; one Record per input.

    files ─► decode (worker threads) ─► bucket by size ─► batch ─► device: resize?, model ─►
    uint8 ─► encode + atomic rename (worker threads) ─► one Record per input

Memory stays bounded whatever the number of inputs: at most ``prefetch`` decoded images wait,
buckets hold at most ``4 * batch_size`` images, and at most ``2 * batch_size`` encodes are in
flight. Each output is claimed (a lock file) before its input is read, so runs that share an
output folder split the work.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.atomic import Claim, held_by_other
from posterforge.images import Decoded, ImageError, decode, encode_atomic
from posterforge.inputs import Job
from posterforge.records import FAILED, OK, Record
from posterforge.runner import Identity, Outputs, Todo, claim_output
from posterforge.sizing import resize
from posterforge.tiling import Fit, Footprint, tiled_forward

if TYPE_CHECKING:
    from posterforge.engine import Engine
    from posterforge.jobs.translate import TranslateJob

log = logging.getLogger(__name__)


@dataclass
class _Item:
    job: Job
    dest: Path
    image: Decoded
    decode_ms: float
    tile: int | None = None  # run in tiles of this side (posterforge.tiling)


class ImageRunner:
    """The image sink of a translate run (a :class:`~posterforge.runner.Sink`): ``pairs`` of
    (input, output) under ``job.out``."""

    def __init__(
        self,
        engine: Engine,
        batch_size: int,
        job: TranslateJob,
        notify: Callable[[str], None],
        pairs: Sequence[tuple[Job, Path]] = (),
    ):
        self.engine, self.batch_size, self.size = engine, batch_size, job.size
        self.fmt, self.keep_alpha, self.overwrite = job.fmt, job.alpha == "keep", job.overwrite
        self.quality, self.keep_metadata = job.quality, job.metadata
        self.job, self.pairs, self.notify = job, pairs, notify
        self.workers = job.workers or min(4, os.cpu_count() or 1)
        self.prefetch = 2 * batch_size + self.workers
        self.max_buffered = 4 * batch_size
        self.claims: dict[Path, Claim] = {}  # outputs this run has locked and not yet written
        self.planned: dict[Path, Identity] = {}  # outputs to replace, as found
        self.footprint: Footprint | None = None  # what frames cost (measured on the first pass)

    @property
    def root(self) -> Path:
        return self.job.out

    def outputs(self) -> Iterator[Outputs]:
        shown = {"model": ("style", self.job.style)}
        yield Outputs([d for _, d in self.pairs], image_settings(self.job, self.engine), shown)

    def run(self, items: Iterator[Todo | Record]) -> Iterator[Record]:
        """The runner's verdicts first, then the images to make, in whole batches."""
        todo = []
        for item in items:
            if isinstance(item, Record):
                yield item
                continue
            if item.seen is not None:  # to tell later whether another run has replaced it since
                self.planned[item.dest] = item.seen
            todo.append((item.src, item.dest))
        yield from self.translate(todo)

    def translate(self, todo: list[tuple[Job, Path]]) -> Iterator[Record]:
        """Translate ``todo``. Each output is claimed (a lock file) before its input is read, so
        runs that share an output folder split the work: an output another live run holds is
        put aside, and once that run lets go it is skipped (written there) or done here."""
        try:
            waiting = yield from self._pass(todo)
            while waiting:
                free, held = [], []
                for item in waiting:
                    (held if held_by_other(item[1]) else free).append(item)
                if not free:
                    time.sleep(0.05)
                    continue
                waiting = held + (yield from self._pass(free))
        finally:
            for held in list(self.claims.values()):
                held.release()
            self.claims.clear()

    def _claim(self, job: Job, dest: Path) -> Record | bool | None:
        """None: ``dest`` is ours to write. False: another live run holds it. A Record: nothing
        to do (another run has written it meanwhile) or it cannot be written."""
        got = claim_output(Todo(job, dest, self.planned.get(dest)))
        if got is None:
            return False
        if isinstance(got, Record):
            return got
        self.claims[dest] = got
        return None

    def _release(self, dest: Path) -> None:
        held = self.claims.pop(dest, None)
        if held is not None:
            held.release()

    def _pass(
        self, todo: list[tuple[Job, Path]]
    ) -> Generator[Record, None, list[tuple[Job, Path]]]:
        """One pipeline over ``todo``; returns the items that another run holds."""
        waiting: list[tuple[Job, Path]] = []
        if self.footprint is None and todo:  # a 64x64 probe through the model, once a run
            self.footprint = Footprint(self.engine)
        gate = Gate(self.footprint, self.size) if self.footprint is not None else None
        with ThreadPoolExecutor(self.workers, thread_name_prefix="posterforge-io") as pool:
            decoding: deque[tuple[Job, Path, Future[Any]]] = deque()
            encoding: deque[Future[Record]] = deque()
            buckets: dict[tuple[int, int], list[_Item]] = {}
            queue = iter(todo)

            def submit_decodes() -> None:
                while len(decoding) < self.prefetch:
                    nxt = next(queue, None)
                    if nxt is None:
                        return
                    job, dest = nxt
                    got = self._claim(job, dest)
                    if got is False:
                        waiting.append(nxt)
                    elif isinstance(got, Record):
                        decoding.append((job, dest, _done(got)))
                    else:
                        decoding.append((job, dest, pool.submit(_timed_decode, job.src, gate)))

            def flush(key: tuple[int, int]) -> None:
                for fut in self._process(buckets.pop(key), pool):
                    encoding.append(fut)

            submit_decodes()
            while decoding:
                job, dest, fut = decoding.popleft()
                submit_decodes()
                try:
                    got = fut.result()
                except ImageError as e:
                    self._release(dest)
                    yield Record(str(job.src), None, FAILED, e.reason)
                    continue
                if isinstance(got, Record):  # skipped or failed when claimed
                    yield got
                    continue
                image, ms, fit = got
                if image.frames > 1:
                    self.notify(f"{job.src}: {image.frames} frames, only the first is translated")
                if fit.tile is not None and gate is not None:  # alone, in tiles: not whole
                    self.notify(f"{job.src}: {gate.tiles_line(image.size, fit.tile)}")
                    encoding.extend(self._process([_Item(job, dest, image, ms, fit.tile)], pool))
                    yield from _drain(encoding, limit=2 * self.batch_size)
                    continue
                key = image.size
                buckets.setdefault(key, []).append(_Item(job, dest, image, ms))
                if len(buckets[key]) >= self.batch_size:
                    flush(key)
                elif sum(map(len, buckets.values())) > self.max_buffered:
                    flush(max(buckets, key=lambda k: len(buckets[k])))
                yield from _drain(encoding, limit=2 * self.batch_size)
            for key in list(buckets):
                flush(key)
            yield from _drain(encoding, limit=0)
        return waiting

    def _process(self, items: list[_Item], pool: ThreadPoolExecutor) -> list[Future[Record]]:
        import torch

        start = time.perf_counter()
        try:
            result = self._compute(items)
        except (MemoryError, torch.OutOfMemoryError, RuntimeError) as e:
            if not out_of_memory(e):
                raise
            if len(items) > 1:  # halve the batch and go on
                half = len(items) // 2
                return self._process(items[:half], pool) + self._process(items[half:], pool)
            w, h = items[0].image.size
            reason = f"out of memory at {w}x{h} ({e.__class__.__name__}); {smaller(w, h)}"
            self._release(items[0].dest)
            return [_done(Record(str(items[0].job.src), None, FAILED, reason))]
        compute_ms = (time.perf_counter() - start) * 1000 / len(items)
        out_hw = result.shape[1:3]
        return [
            pool.submit(self._encode, it, result[i], out_hw, it.decode_ms + compute_ms)
            for i, it in enumerate(items)
        ]

    def _compute(self, items: list[_Item]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(np.stack([it.image.rgb for it in items]))
            x = self.engine.to_device(batch)
            if self.size is not None:
                x = resize(x, self.size)
            if (tile := items[0].tile) is not None:
                return self.engine.to_uint8(tiled_forward(self.engine, x, tile)).numpy()
            return self.engine.to_uint8(self.engine.forward(x)).numpy()

    def _encode(self, item: _Item, rgb: np.ndarray, hw: tuple[int, int], ms: float) -> Record:
        start = time.perf_counter()
        alpha = item.image.alpha if self.keep_alpha else None
        if alpha is not None and alpha.shape != tuple(hw):
            from PIL import Image

            alpha = np.asarray(Image.fromarray(alpha).resize((hw[1], hw[0]), Image.BILINEAR))
        try:
            meta = item.image.metadata if self.keep_metadata else None
            encode_atomic(
                rgb, item.dest, fmt=self.fmt, alpha=alpha, quality=self.quality, metadata=meta
            )
        except OSError as e:
            reason = f"cannot write {item.dest}: {e.strerror or e}"
            return Record(str(item.job.src), None, FAILED, reason)
        finally:
            self._release(item.dest)  # after the rename: a run that claims it next sees it done
        ms += (time.perf_counter() - start) * 1000
        return Record(str(item.job.src), str(item.dest), OK, None, round(ms, 1))


def image_settings(job: TranslateJob, engine: Engine) -> dict[str, Any]:
    """What made an image output: a re-run with other settings is refused, not skipped. The
    backend only when not torch: OpenVINO's bytes differ from torch's by a grey level here and
    there."""
    settings = {
        "command": "translate",
        "model": engine.model_id,
        "size": None if job.size is None else str(job.size),
        "format": job.fmt,
        "alpha": job.alpha,
        "quality": job.quality,
        "metadata": job.metadata,
        "precision": engine.precision,
    }
    if (backend := engine.choice.record()) is not None:
        settings["backend"] = backend
    return settings


def _done(record: Record) -> Future[Record]:
    fut: Future[Record] = Future()
    fut.set_result(record)
    return fut


class Gate:
    """Whether a frame fits whole, in tiles, or not at all, decided from its header before it is
    decoded (:mod:`posterforge.tiling`)."""

    def __init__(self, footprint: Footprint, size: Any):
        self.footprint, self.size = footprint, size

    def __call__(self, path: Path) -> Fit:
        from posterforge.images import probe_size

        wh = probe_size(path)
        if wh is None:  # decoding will say why
            return Fit()
        model = None if self.size is None else self.size.target(*wh)
        return self.footprint.fit(path, *wh, model)

    def tiles_line(self, wh: tuple[int, int], tile: int) -> str:
        from posterforge.tiling import BUDGET_ENV, spans

        mw, mh = wh if self.size is None else self.size.target(*wh)
        n = len(spans(mw, min(tile, mw))) * len(spans(mh, min(tile, mh)))
        return (
            f"{wh[0]}x{wh[1]} does not fit whole in the memory budget ({BUDGET_ENV}): "
            f"translated in {n} blended tiles of {tile} px"
        )


def _timed_decode(path: Path, gate: Gate | None = None) -> tuple[Decoded, float, Fit]:
    start = time.perf_counter()
    fit = Fit() if gate is None else gate(path)  # an ImageError when it can never fit
    try:
        image = decode(path)
    except MemoryError:  # one huge image is its own failure, not the run's
        from posterforge.images import probe_size

        wh = probe_size(path)
        why = f"out of memory decoding it at {wh[0]}x{wh[1]}; " + smaller(*wh) if wh else ""
        raise ImageError(path, why or "out of memory decoding it") from None
    return image, (time.perf_counter() - start) * 1000, fit


def out_of_memory(e: BaseException) -> bool:
    """An allocation that failed: Python's, CUDA's, or the CPU allocator's RuntimeError."""
    import torch

    if isinstance(e, MemoryError | torch.OutOfMemoryError):
        return True
    text = str(e)
    # CPU allocator: "can't allocate memory" (Linux) or "not enough memory: you tried to allocate"
    said = ("can't allocate memory", "out of memory", "not enough memory")
    return any(s in text.lower() for s in said)


def smaller(w: int, h: int) -> str:
    """What to try when a frame of (w, h) does not fit: half its shorter side."""
    return f"try a smaller frame, e.g. --size {max(1, min(w, h) // 2)}"


def _drain(encoding: deque[Future[Record]], limit: int) -> Iterator[Record]:
    """Yield finished encodes in order; block while more than ``limit`` are in flight."""
    while encoding and (encoding[0].done() or len(encoding) > limit):
        yield encoding.popleft().result()
