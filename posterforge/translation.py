"""The translate pipeline: stream image files through a translator into a mirrored output tree.

    files ─► decode (worker threads) ─► bucket by size ─► batch ─► device: resize?, model ─►
    uint8 ─► encode + atomic rename (worker threads) ─► one Record per input

Memory stays bounded whatever the number of inputs: at most ``prefetch`` decoded images wait,
buckets hold at most ``4 * batch_size`` images, and at most ``2 * batch_size`` encodes are in
flight. Only the list of paths is held whole (for collisions, sharding and the ETA).
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from posterforge.atomic import Claim, claim, held_by_other, remove_stale
from posterforge.catalog import ResolvedModel
from posterforge.context import Context, default_context
from posterforge.errors import PosterforgeError
from posterforge.images import (
    IMAGE_SUFFIXES,
    Decoded,
    ImageError,
    decode,
    encode_atomic,
)
from posterforge.inputs import Job, discover, in_shard, parse_shard, unique_outputs
from posterforge.jobs.common import check_format
from posterforge.jobs.translate import DEFAULT_STYLE, TranslateJob
from posterforge.outputs import reserve
from posterforge.records import FAILED, OK, SKIPPED, Kind, Record
from posterforge.sizing import Size, resize

if TYPE_CHECKING:
    from posterforge.engine import Engine

log = logging.getLogger(__name__)


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


def default_batch_size(device_type: str) -> int:
    """Batches feed an accelerator; on the CPU, batching measured no faster (the convolutions are
    compute-bound at batch 1) and multiplies memory, so the CPU takes one image at a time."""
    return 1 if device_type == "cpu" else 8


def load_engine(
    style: str | ResolvedModel = DEFAULT_STYLE,
    *,
    device: str = "auto",
    precision: str = "fp32",
    compile: str = "auto",
    ctx: Context | None = None,
) -> Engine:
    """Resolve a style (name, weight file, or a model resolved already), build its network and
    wrap it in an Engine."""
    from posterforge.engine import Engine, resolve_device

    model = style if isinstance(style, ResolvedModel) else _resolve(style, ctx)
    cls = model.cls
    return Engine(
        model.build(),
        resolve_device(device),
        multiple=cls.multiple,
        min_size=cls.min_size,
        precision=precision,
        compile=compile,
        model_id=model.model_id,
    )


def _resolve(style: str, ctx: Context | None) -> ResolvedModel:
    from posterforge.catalog import resolve_model

    ctx = ctx or default_context()
    return resolve_model(style, Kind.TRANSLATOR, ctx.host, ctx.store)


def start(
    job: TranslateJob,
    ctx: Context | None = None,
    *,
    stdin: TextIO | None = None,
    strict: bool = False,
    notify: Callable[[str], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> TranslateRun:
    """Everything a run does before it reads an image, in the order a user wants to hear of
    problems: the style is resolved (once: path, header, sha256, class), the inputs planned, the
    video encoders and the output folder checked, then the model built. Raises on any
    configuration error; then :meth:`TranslateRun.records` does the work.

    ``strict`` (what the command line wants): a named input that does not exist, or inputs that
    hold no image, are errors. ``notify`` receives one-line notes about single inputs (by
    default logged as warnings); ``on_frames`` the number of video frames each batch translated.
    """
    model = _resolve(job.style, ctx)
    pairs = plan(
        job.inputs, job.out, fmt=job.fmt, shard=job.shard, stdin=stdin, null=job.null,
        relative_to=job.relative_to, strict=strict,
    )  # fmt: skip
    run = TranslateRun(job, model, pairs, notify=notify or log.warning, on_frames=on_frames)
    if not pairs:  # an empty shard: nothing to load
        return run
    videos = run.videos
    if videos or job.vcodec is not None or job.crf is not None:
        _check_video_codec(job.vcodec, job.crf, [dest for _, dest in videos])
    if job.overwrite or any(not dest.exists() for _, dest in pairs):
        # before the model loads: a read-only --out fails in a second
        one_file = len(videos) == 1 and pairs[0][1] == job.out
        _check_writable(job.out.parent if one_file else job.out)
    run.engine = load_engine(
        model, device=job.device, precision=job.precision, compile=job.compile
    )
    return run


@dataclass(eq=False)
class TranslateRun:
    """A planned translate run, its model built: :meth:`records` does the work."""

    job: TranslateJob
    model: ResolvedModel
    pairs: list[tuple[Job, Path]]
    engine: Engine | None = None
    notify: Callable[[str], None] = log.warning
    on_frames: Callable[[int], None] | None = None

    @property
    def videos(self) -> list[tuple[Job, Path]]:
        return [p for p in self.pairs if p[0].video]

    @property
    def batch_size(self) -> int:
        if self.job.batch_size is not None:
            return self.job.batch_size
        return default_batch_size(self.engine.device.type if self.engine else "cpu")

    def records(self) -> Iterator[Record]:
        """Translate every input; yields one :class:`Record` per input as it finishes. Bad
        images become ``failed`` records and the run goes on. Videos run after the images, one
        :class:`~posterforge.video.translate.VideoRecord` each."""
        if self.engine is None:
            return
        job, engine, batch_size = self.job, self.engine, self.batch_size
        runner = _Runner(engine, batch_size, job, self.notify)
        for folder in dict.fromkeys(dest.parent for _, dest in self.pairs):
            _remove_stale_temps(folder, runner.started)
        videos = self.videos
        pairs = [p for p in self.pairs if not p[0].video]
        if engine.compile == "auto" and engine.device.type != "mps":  # mps never compiles
            expect_job(engine, [src.src for src, _ in pairs], batch_size, job.size)
        # existing outputs are skipped only when these settings made them (else refused up front)
        completed = (
            reserve(job.out, _settings(job, engine), [d for _, d in pairs], overwrite=job.overwrite)
            if pairs
            else lambda: None
        )
        video_run = None
        if videos:  # checks the encoder and the videos' outputs before any work
            from posterforge.video.translate import VideoRun

            video_run = VideoRun(
                videos, job.out, engine=engine, batch_size=batch_size, size=job.size,
                vcodec=job.vcodec, crf=job.crf, overwrite=job.overwrite, notify=self.notify,
                on_frames=self.on_frames,
            )  # fmt: skip
        todo = []
        for item in _to_do(pairs, job, runner):
            if isinstance(item, Record):
                yield item
            else:
                todo.append(item)
        yield from runner.run(todo)
        completed()
        if video_run is not None:
            yield from video_run.run()


def _settings(job: TranslateJob, engine: Engine) -> dict[str, Any]:
    """What made an output: a re-run with other settings is refused, not skipped."""
    return {
        "command": "translate",
        "model": engine.model_id,
        "size": None if job.size is None else str(job.size),
        "format": job.fmt,
        "alpha": job.alpha,
        "quality": job.quality,
        "metadata": job.metadata,
        "precision": engine.precision,
    }


def _to_do(
    pairs: list[tuple[Job, Path]], job: TranslateJob, runner: _Runner
) -> Iterator[tuple[Job, Path] | Record]:
    """The pairs to translate; a record at once for an output that cannot be written or exists."""
    root, inside = job.out.resolve(), {}
    for src, dest in pairs:
        if (problem := _unwritable(dest, root, inside)) is not None:
            yield Record(str(src.src), None, FAILED, problem)
        elif (seen := _identity(dest)) is not None and not job.overwrite:
            yield Record(str(src.src), str(dest), SKIPPED, "output exists (use --overwrite)")
        else:
            if seen is not None:  # to tell later whether another run has replaced it since
                runner.planned[dest] = seen
            yield src, dest


def translate_iter(job: TranslateJob, ctx: Context | None = None) -> Iterator[Record]:
    """:func:`start` then :meth:`TranslateRun.records`: one record per input as it finishes."""
    yield from start(job, ctx).records()


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


def _identity(path: Path) -> tuple[int, int, int, int] | None:
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
        return f"cannot write {dest}: a folder of that name is in the way"
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


@dataclass
class _Item:
    job: Job
    dest: Path
    image: Decoded
    decode_ms: float


class _Runner:
    def __init__(
        self, engine: Engine, batch_size: int, job: TranslateJob, notify: Callable[[str], None]
    ):
        self.engine, self.batch_size, self.size = engine, batch_size, job.size
        self.fmt, self.keep_alpha, self.overwrite = job.fmt, job.alpha == "keep", job.overwrite
        self.quality, self.keep_metadata = job.quality, job.metadata
        self.notify = notify
        self.workers = job.workers or min(4, os.cpu_count() or 1)
        self.prefetch = 2 * batch_size + self.workers
        self.max_buffered = 4 * batch_size
        self.started = time.time()
        self.claims: dict[Path, Claim] = {}  # outputs this run has locked and not yet written
        self.planned: dict[Path, tuple[int, int, int, int]] = {}  # outputs to replace, as found

    def run(self, todo: list[tuple[Job, Path]]) -> Iterator[Record]:
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
        try:
            held = claim(dest)
        except OSError as e:
            why = e.strerror or str(e)
            if e.errno == errno.EEXIST and e.filename:
                why = f"{e.filename} is {why}"
            return Record(str(job.src), None, FAILED, f"cannot write {dest}: {why}")
        if held is None:
            return False
        # re-check now that it is ours: another run may have written it since we planned
        if (now := _identity(dest)) is not None and now != self.planned.get(dest):
            held.release()
            if dest.is_dir():
                why = f"cannot write {dest}: a folder of that name is in the way"
                return Record(str(job.src), None, FAILED, why)
            return Record(str(job.src), str(dest), SKIPPED, "finished by another process")
        self.claims[dest] = held
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
                        decoding.append((job, dest, pool.submit(_timed_decode, job.src)))

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
                image, ms = got
                if image.frames > 1:
                    self.notify(f"{job.src}: {image.frames} frames, only the first is translated")
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
        except (MemoryError, torch.OutOfMemoryError) as e:  # halve the batch and go on
            if len(items) > 1:
                half = len(items) // 2
                return self._process(items[:half], pool) + self._process(items[half:], pool)
            w, h = items[0].image.size
            reason = f"out of memory at {w}x{h} ({e.__class__.__name__}); try --size"
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


def _remove_stale_temps(folder: Path, since: float) -> None:
    """Temp and lock files in an output folder left by killed runs: only those whose writer is
    provably gone (a dead process on this host, or untouched since well before ``since``)."""
    remove_stale(folder, since=since)


def _check_video_codec(vcodec: str | None, crf: int | None, dests: list[Path]) -> None:
    """The encoder each video output uses exists here, takes ``crf`` and fits the container."""
    from posterforge.video.containers import default_vcodec
    from posterforge.video.io import check_codec

    by_codec: dict[str, set[str]] = {}
    for dest in dests:
        by_codec.setdefault(vcodec or default_vcodec(dest), set()).add(dest.suffix)
    if not by_codec:  # --vcodec or --crf without a video: still checked
        by_codec[vcodec or "libx264"] = set()
    for name, suffixes in by_codec.items():
        check_codec(name, crf, suffixes)


def _check_writable(out: Path) -> None:
    from posterforge.atomic import probe_writable

    try:
        probe_writable(out)
    except OSError as e:
        where = f"{e.filename}: " if e.filename and e.filename != str(out) else ""
        raise PosterforgeError(f"cannot write to {out}: {where}{e.strerror or e}") from None
