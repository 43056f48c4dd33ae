"""The translate pipeline: stream image files through a translator into a mirrored output tree.

    files ─► decode (worker threads) ─► bucket by size ─► batch ─► device: resize?, model ─►
    uint8 ─► encode + atomic rename (worker threads) ─► one Record per input

Memory stays bounded whatever the number of inputs: at most ``prefetch`` decoded images wait,
buckets hold at most ``4 * batch_size`` images, and at most ``2 * batch_size`` encodes are in
flight. Only the list of paths is held whole (for collisions, sharding and the ETA).
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from posterforge.errors import PosterforgeError
from posterforge.images import FORMATS, Decoded, ImageError, decode, encode_atomic, format_for
from posterforge.images import is_temp_file as _is_temp
from posterforge.inputs import Job, discover, in_shard, parse_shard, unique_outputs

if TYPE_CHECKING:
    import torch

    from posterforge.engine import Engine
    from posterforge.store import Store

OK, SKIPPED, FAILED = "ok", "skipped", "failed"


@dataclass
class Record:
    """What happened to one input; ``--json`` prints one of these per line."""

    input: str
    output: str | None
    status: str  # ok | skipped | failed
    error: str | None = None
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Size:
    """``--size``: ``N`` scales the shorter side to N (aspect kept); ``WxH`` is exact."""

    width: int | None = None
    height: int | None = None
    short: int | None = None

    @classmethod
    def parse(cls, text: str) -> Size:
        if m := re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text):
            w, h = int(m[1]), int(m[2])
            if w > 0 and h > 0:
                return cls(width=w, height=h)
        elif (m := re.fullmatch(r"\s*(\d+)\s*", text)) and int(m[1]) > 0:
            return cls(short=int(m[1]))
        raise PosterforgeError(f"invalid size {text!r}: use N (shorter side) or WxH, e.g. 1280x720")

    def target(self, w: int, h: int) -> tuple[int, int]:
        """(W, H) for an input of (w, h)."""
        if self.short is None:
            assert self.width and self.height
            return self.width, self.height
        scale = self.short / min(w, h)
        return max(1, round(w * scale)), max(1, round(h * scale))


def plan(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    fmt: str | None = None,
    shard: str | None = None,
    stdin: TextIO | None = None,
) -> list[tuple[Job, Path]]:
    """The (input, output path) pairs of a run, in order; raises if two inputs share an output."""
    if fmt is not None:
        fmt = _check_format(fmt)
    # An output folder inside an input folder must not feed our own outputs back in on a re-run.
    out_dir = Path(out).resolve()
    jobs: Iterable[Job] = (
        j for j in discover(inputs, stdin=stdin) if not j.src.resolve().is_relative_to(out_dir)
    )
    if shard is not None:
        try:
            k, n = parse_shard(shard)
        except ValueError as e:
            raise PosterforgeError(str(e)) from None
        jobs = (j for j in jobs if in_shard(j, k, n))
    return list(unique_outputs(jobs, Path(out), fmt))


def _check_format(fmt: str) -> str:
    try:
        return format_for("." + fmt.lower().lstrip("."))
    except ValueError:
        raise PosterforgeError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}") from None


def default_batch_size(device_type: str) -> int:
    """Batches feed an accelerator; on the CPU, batching measured no faster (the convolutions are
    compute-bound at batch 1) and multiplies memory, so the CPU takes one image at a time."""
    return 1 if device_type == "cpu" else 8


def load_engine(
    style: str = "vintage",
    *,
    device: str = "auto",
    precision: str = "fp32",
    compile: str = "auto",
    store: Store | None = None,
) -> Engine:
    """Resolve a style (name or weight file), build its network and wrap it in an Engine."""
    from posterforge.catalog import resolve_style
    from posterforge.engine import Engine, resolve_device
    from posterforge.plugins import get_host
    from posterforge.store import Store
    from posterforge.weights import load_weights

    resolved = resolve_style(style, get_host(), store or Store())
    weights = load_weights(resolved.weights) if resolved.weights is not None else None
    module = resolved.translator.build(weights)
    cls = resolved.translator
    return Engine(
        module,
        resolve_device(device),
        multiple=cls.multiple,
        min_size=cls.min_size,
        precision=precision,
        compile=compile,
    )


def translate_iter(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    style: str = "vintage",
    batch_size: int | None = None,
    size: str | Size | None = None,
    fmt: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    compile: str = "auto",
    overwrite: bool = False,
    shard: str | None = None,
    alpha: str = "keep",
    workers: int | None = None,
    stdin: TextIO | None = None,
    store: Store | None = None,
    engine: Engine | None = None,
    planned: list[tuple[Job, Path]] | None = None,
) -> Iterator[Record]:
    """Translate every input; yields one :class:`Record` per input as it finishes.

    Configuration errors (unknown style, missing weights, output collisions) raise before any
    image is read. Bad images become ``failed`` records and the run goes on.
    """
    if batch_size is not None and batch_size < 1:
        raise PosterforgeError("batch size must be at least 1")
    if alpha not in ("keep", "drop"):
        raise PosterforgeError(f"invalid alpha mode {alpha!r}: use keep or drop")
    if isinstance(size, str):
        size = Size.parse(size)
    fmt = _check_format(fmt) if fmt is not None else None
    pairs = planned if planned is not None else plan(inputs, out, fmt=fmt, shard=shard, stdin=stdin)
    if engine is None:
        engine = load_engine(
            style, device=device, precision=precision, compile=compile, store=store
        )
    if batch_size is None:
        batch_size = default_batch_size(engine.device.type)
    runner = _Runner(engine, batch_size, size, fmt, alpha == "keep", workers)
    todo: list[tuple[Job, Path]] = []
    for job, dest in pairs:
        if dest.exists() and not overwrite:
            yield Record(str(job.src), str(dest), SKIPPED, "output exists (use --overwrite)")
        else:
            todo.append((job, dest))
    yield from runner.run(todo)


def translate(inputs: Sequence[str | Path], out: str | Path, **options: Any) -> list[Record]:
    """Translate files and folders into ``out``; returns one record per input.

    >>> records = translate(["frames/"], "out/", style="vintage")  # doctest: +SKIP
    >>> sum(r.status == "ok" for r in records)  # doctest: +SKIP
    120
    """
    return list(translate_iter(inputs, out, **options))


@dataclass
class _Item:
    job: Job
    dest: Path
    image: Decoded
    decode_ms: float


class _Runner:
    def __init__(
        self,
        engine: Engine,
        batch_size: int,
        size: Size | None,
        fmt: str | None,
        keep_alpha: bool,
        workers: int | None,
    ):
        self.engine, self.batch_size, self.size = engine, batch_size, size
        self.fmt, self.keep_alpha = fmt, keep_alpha
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.prefetch = 2 * batch_size + self.workers
        self.max_buffered = 4 * batch_size

    def run(self, todo: list[tuple[Job, Path]]) -> Iterator[Record]:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="posterforge-io") as pool:
            decoding: deque[tuple[Job, Path, Future[tuple[Decoded, float]]]] = deque()
            encoding: deque[Future[Record]] = deque()
            buckets: dict[tuple[int, int], list[_Item]] = {}
            queue = iter(todo)

            def submit_decodes() -> None:
                while len(decoding) < self.prefetch:
                    nxt = next(queue, None)
                    if nxt is None:
                        return
                    decoding.append((*nxt, pool.submit(_timed_decode, nxt[0].src)))

            def flush(key: tuple[int, int]) -> None:
                for fut in self._process(buckets.pop(key), pool):
                    encoding.append(fut)

            submit_decodes()
            left = len(todo)
            while decoding:
                self.engine.remaining = left
                left -= 1
                job, dest, fut = decoding.popleft()
                submit_decodes()
                try:
                    image, ms = fut.result()
                except ImageError as e:
                    yield Record(str(job.src), None, FAILED, e.reason)
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

    def _process(self, items: list[_Item], pool: ThreadPoolExecutor) -> list[Future[Record]]:
        import torch

        start = time.perf_counter()
        try:
            result = self._compute(items)
        except (MemoryError, torch.OutOfMemoryError) as e:  # halve the batch and go on
            if len(items) > 1:
                half = len(items) // 2
                return self._process(items[:half], pool) + self._process(items[half:], pool)
            w, h = items[0].image.size
            reason = f"out of memory at {w}x{h} ({e.__class__.__name__}); try --size"
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
                x = _resize(x, self.size)
            return self.engine.to_uint8(self.engine.forward(x)).numpy()

    def _encode(self, item: _Item, rgb: np.ndarray, hw: tuple[int, int], ms: float) -> Record:
        start = time.perf_counter()
        alpha = item.image.alpha if self.keep_alpha else None
        if alpha is not None and alpha.shape != tuple(hw):
            from PIL import Image

            alpha = np.asarray(Image.fromarray(alpha).resize((hw[1], hw[0]), Image.BILINEAR))
        try:
            _remove_stale_temps(item.dest)
            encode_atomic(rgb, item.dest, fmt=self.fmt, alpha=alpha)
        except OSError as e:
            reason = f"cannot write {item.dest}: {e.strerror or e}"
            return Record(str(item.job.src), None, FAILED, reason)
        ms += (time.perf_counter() - start) * 1000
        return Record(str(item.job.src), str(item.dest), OK, None, round(ms, 1))


def _done(record: Record) -> Future[Record]:
    fut: Future[Record] = Future()
    fut.set_result(record)
    return fut


def _timed_decode(path: Path) -> tuple[Decoded, float]:
    start = time.perf_counter()
    image = decode(path)
    return image, (time.perf_counter() - start) * 1000


def _drain(encoding: deque[Future[Record]], limit: int) -> Iterator[Record]:
    """Yield finished encodes in order; block while more than ``limit`` are in flight."""
    while encoding and (encoding[0].done() or len(encoding) > limit):
        yield encoding.popleft().result()


def _remove_stale_temps(dest: Path) -> None:
    """Temp files of this output left by a killed run (they are ours by name)."""
    if dest.parent.is_dir():
        for stale in dest.parent.glob(f".{glob.escape(dest.name[:50])}.*.tmp"):
            if _is_temp(stale):
                stale.unlink(missing_ok=True)


def _resize(x: torch.Tensor, size: Size) -> torch.Tensor:
    """Batched resize on the device (kornia, antialiased when shrinking)."""
    import kornia

    h, w = x.shape[-2:]
    tw, th = size.target(w, h)
    if (tw, th) == (w, h):
        return x
    return kornia.geometry.transform.resize(x, (th, tw), interpolation="bilinear", antialias=True)
