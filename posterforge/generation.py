"""Generate images from any generator family, as tensors, images or files.

    model name ─► weights ─► built generator ─► engine (device, precision, compile) ─►
    noise per image index ─► batches ─► uint8 ─► encode + atomic rename (worker threads) ─►
    one Poster record per file

The core knows seeds, batches, files and grids; what a condition (``--genre horror+comedy``)
means belongs to the family (:class:`posterforge.models.BuiltGenerator`). Image ``i`` of a run
with seed ``s`` always gets the same noise vector, whatever the batch size, ``-n`` or condition,
so the same seed gives the same images on the same device, a re-run skips what exists
(``overwrite`` to redo), and image ``i`` of two conditions differs only by its condition.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.errors import PosterforgeError
from posterforge.images import FORMATS, encode_atomic, format_for

if TYPE_CHECKING:
    import torch

    from posterforge.engine import Engine
    from posterforge.models import BuiltGenerator
    from posterforge.store import Store

DEFAULT_MODEL = "posters-demo"
OK, SKIPPED = "ok", "skipped"


@dataclass
class Poster:
    """One generated image; ``--json`` prints one of these per line (``condition`` is the canonical
    spelling of what was asked for, empty for an unconditional generator)."""

    path: str | None
    condition: str
    index: int
    seed: int
    status: str = OK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedGenerator:
    """A built generator in its engine: the generator boundary the core samples through."""

    engine: Engine
    name: str = ""

    @property
    def module(self) -> BuiltGenerator:
        return self.engine.module  # type: ignore[return-value]

    @property
    def z_dim(self) -> int:
        return int(self.module.z_dim)

    @property
    def image_size(self) -> tuple[int, int]:  # (W, H)
        w, h = self.module.image_size
        return int(w), int(h)

    @property
    def label_names(self) -> list[str] | None:
        names = self.module.label_names
        return None if names is None else list(names)

    @property
    def conditional(self) -> bool:
        return self.label_names is not None

    @property
    def truncation_in_model(self) -> bool:
        return getattr(self.module, "truncation", "resample") == "model"

    def caption(self, spec: str | None) -> str:
        """The canonical condition for file names and captions ("" when unconditional)."""
        if not self.conditional:
            if spec:
                raise PosterforgeError(
                    f"generator {self.name or '?'} is unconditional: leave out --genre"
                )
            return ""
        if spec is None:
            raise PosterforgeError(
                f"generator {self.name or '?'} is conditional: name what to generate with "
                f"--genre (one of {', '.join(self.label_names or [])})"
            )
        return self.module.caption(spec)

    def conditions(self, spec: str | None, n: int) -> torch.Tensor | None:
        """The condition rows for ``n`` images of ``spec`` (None when unconditional)."""
        if not self.conditional:
            return None
        return self.module.conditions(spec).reshape(1, -1).float().repeat(n, 1)

    def __call__(
        self, z: torch.Tensor, conditions: torch.Tensor | None, truncation: float | None = None
    ) -> torch.Tensor:
        """Float ``(B, 3, H, W)`` in ``[0, 1]`` on the device, from CPU ``z`` and conditions."""
        kw = {"truncation": truncation} if truncation is not None else {}
        return self.engine.sample(z, conditions, **kw)


def noise(indices: Sequence[int], z_dim: int, seed: int, truncation: float | None = None):
    """``(len(indices), z_dim)`` standard normal noise on the CPU, one row per poster index.

    Row ``i`` depends only on ``(seed, i)``. With ``truncation`` psi, entries outside
    ``[-psi, psi]`` are drawn again (the truncation trick of BigGAN): less variety, more typical
    posters."""
    import torch

    if truncation is not None and truncation <= 0:
        raise PosterforgeError(f"truncation must be positive, not {truncation}")
    rows = np.zeros((len(indices), z_dim), dtype=np.float32)
    for row, i in enumerate(indices):
        # numpy's seed sequence takes (seed, index) whole; torch's CPU generator keeps 32 bits
        rng = np.random.default_rng((int(seed), int(i)))
        z = rng.standard_normal(z_dim)
        if truncation is not None:
            for _ in range(1000):  # P(|z| > psi) < 1 for any psi > 0: this ends
                out = np.abs(z) > truncation
                if not out.any():
                    break
                z[out] = rng.standard_normal(int(out.sum()))
            np.clip(z, -truncation, truncation, out=z)
        rows[row] = z
    return torch.from_numpy(rows)


def load_generator(
    model: str = DEFAULT_MODEL,
    *,
    device: str = "auto",
    precision: str = "fp32",
    compile: str = "auto",
    store: Store | None = None,
) -> LoadedGenerator:
    """Resolve a generator (a stored name, a plugin's weights or a ``.safetensors`` file), build
    it and put it in an engine on ``device``, ready to sample."""
    from posterforge.catalog import resolve_generator
    from posterforge.engine import Engine, check_precision, resolve_device
    from posterforge.plugins import get_host
    from posterforge.store import Store
    from posterforge.weights import build_checked

    check_precision(precision)
    cls, path = resolve_generator(model, get_host(), store or Store())
    from posterforge.translation import model_id

    module = build_checked(cls, path)
    engine = Engine(
        module,
        resolve_device(device),
        precision=precision,
        compile=compile,
        model_id=model_id(cls.name, path),
    )
    return LoadedGenerator(engine, model)


def _batch(
    gen: LoadedGenerator, spec: str | None, indices: Sequence[int], seed: int, psi: float | None
) -> torch.Tensor:
    """Images ``indices`` of ``spec`` on the device; truncation is the family's or noise redraws."""
    if gen.truncation_in_model:
        return gen(noise(indices, gen.z_dim, seed), gen.conditions(spec, len(indices)), psi)
    return gen(noise(indices, gen.z_dim, seed, psi), gen.conditions(spec, len(indices)))


def sample(
    gen: LoadedGenerator,
    condition: str | None,
    n: int,
    *,
    seed: int = 0,
    truncation: float | None = None,
    batch_size: int = 64,
    start: int = 0,
) -> torch.Tensor:
    """``n`` images of ``condition`` (None for an unconditional generator) as a float
    ``(n, 3, H, W)`` CPU tensor in ``[0, 1]``; image ``k`` has index ``start + k`` (see the module
    docstring). Nothing touches the disk."""
    import torch

    gen.caption(condition)  # refuses a condition the generator does not take, and vice versa
    if truncation is not None and truncation <= 0:
        raise PosterforgeError(f"truncation must be positive, not {truncation}")
    out = [
        _batch(gen, condition, range(i, min(i + batch_size, start + n)), seed, truncation).cpu()
        for i in range(start, start + n, batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, 3, gen.image_size[1], gen.image_size[0])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float ``(B, 3, H, W)`` in ``[0, 1]`` to uint8 ``(B, H, W, 3)`` on the CPU."""
    from posterforge.engine import Engine

    return Engine.to_uint8(x)


def generate_images(
    model: str = DEFAULT_MODEL, condition: str | None = None, n: int = 8, **kw: Any
) -> list[Any]:
    """``n`` images of ``condition`` as PIL images (``kw``: seed, truncation, batch_size, device,
    precision).

    >>> posters = generate_images("posters-demo", "horror", 4, seed=1)  # doctest: +SKIP
    """
    from PIL import Image

    opts = {k: kw.pop(k) for k in ("device", "precision", "compile", "store") if k in kw}
    gen = load_generator(model, **opts)
    return [Image.fromarray(a.numpy()) for a in to_uint8(sample(gen, condition, n, **kw))]


def poster_path(out: Path, caption: str, index: int, fmt: str) -> Path:
    """Where poster ``index`` of a condition goes: ``CAPTION-00000.png`` (``00000.png`` for an
    unconditional generator)."""
    prefix = f"{file_stem(caption)}-" if caption else ""
    return out / f"{prefix}{index:05d}{FORMATS[fmt].suffix}"


def file_stem(caption: str) -> str:
    """A file-name-safe form of a caption (``horror+comedy:0.5`` -> ``horror+comedy-0.5``)."""
    return re.sub(r"[^A-Za-z0-9+._-]", "-", caption)


def generate_iter(
    conditions: Sequence[str | None] | None,
    n: int,
    out: str | Path | None,
    *,
    model: str = DEFAULT_MODEL,
    seed: int = 0,
    truncation: float | None = None,
    batch_size: int = 64,
    fmt: str = "png",
    device: str = "auto",
    precision: str = "fp32",
    compile: str = "auto",
    overwrite: bool = False,
    grid: str | Path | None = None,
    grid_max: int = 64,
    store: Store | None = None,
    generator: LoadedGenerator | None = None,
    on_start: Callable[[LoadedGenerator], None] | None = None,
    shard: str | None = None,
) -> Iterator[Poster]:
    """Generate ``n`` images for each of ``conditions`` (label specs such as ``horror`` or
    ``horror+comedy``; ``None`` or empty for an unconditional generator); write them under
    ``out`` (``CONDITION-00000.png``, or ``00000.png`` unconditionally) and/or a contact sheet
    to ``grid`` (the first ``grid_max`` of each condition, captioned). Yields one
    :class:`Poster` per image as it is written.

    ``shard`` ``K/N`` makes and writes only the batches ``b`` (indices ``[b*B, (b+1)*B)`` for
    ``batch_size`` B) with ``b % N == K - 1`` (the grid, when asked, is still whole): N processes
    with shards 1..N write the bytes one would.

    Configuration errors (unknown model or condition, bad format) raise before anything is
    written.
    """
    if n < 0:
        raise PosterforgeError("-n must not be negative")
    if batch_size < 1:
        raise PosterforgeError("batch size must be at least 1")
    if out is None and grid is None:
        raise PosterforgeError("nothing to write: pass --out DIR and/or --grid FILE")
    if truncation is not None and truncation <= 0:
        raise PosterforgeError(f"truncation must be positive, not {truncation}")
    if seed < 0:
        raise PosterforgeError(f"--seed must be 0 or more, not {seed}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise PosterforgeError(f"--out {out}: is a file, not a folder")
    if grid is not None:
        from posterforge.sheet import check_destination

        check_destination(grid, "--grid")
    try:
        fmt = format_for("." + fmt.lower().lstrip("."))
    except ValueError:
        raise PosterforgeError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}") from None
    part = (0, 1)
    if shard is not None:
        from posterforge.inputs import parse_shard

        try:
            k, parts = parse_shard(shard)
        except ValueError as e:
            raise PosterforgeError(str(e)) from None
        part = (k - 1, parts)
    gen = generator or load_generator(
        model, device=device, precision=precision, compile=compile, store=store
    )
    specs = list(conditions or []) or [None]
    captions = [gen.caption(c) for c in specs]  # unknown labels fail here, up front
    out = Path(out) if out is not None else None
    jobs = [
        _ConditionJob(gen, spec, caption, seed, truncation, fmt, out, overwrite, part, batch_size)
        for spec, caption in zip(specs, captions, strict=True)
    ]
    completed = None
    if out is not None:
        from posterforge.atomic import remove_stale
        from posterforge.outputs import reserve

        remove_stale(out)  # temp files of a killed run (dead writers only)
        settings = {
            "command": "generate",
            "model": gen.engine.model_id,
            "seed": seed,
            "truncation": truncation,
            "format": fmt,
            "precision": gen.engine.precision,
        }
        # existing images are skipped only when these settings made them (else refused now)
        dests = [
            d for job in jobs for i in range(n) if job.mine(i) and (d := job.dest(i)) is not None
        ]
        completed = reserve(out, settings, dests, overwrite=overwrite)
    if gen.engine.compile == "auto":  # the whole job, so that a resumed run decides alike
        cond = gen.conditions(specs[0], 1)
        count = n if out is not None else min(n, grid_max)  # per condition
        count = sum(1 for i in range(count) if jobs[0].mine(i))  # this process's share
        dim = None if cond is None else int(cond.shape[1])
        batch = min(batch_size, max(count, 1))
        gen.engine.expect_samples(batch, gen.z_dim, dim, count * len(jobs))
    if on_start is not None:  # everything is checked: the work begins
        on_start(gen)
    sheets: list[tuple[str, list[Any]]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pf-encode") as pool:
        for job in jobs:
            job.pool = pool
            count = n if out is not None else min(n, grid_max)  # no files: only the grid's
            yield from job.run(count, batch_size, grid_max if grid is not None else 0)
            sheets.append((job.caption, job.sheet))
    if completed is not None:
        completed()
    if grid is not None:
        from posterforge.sheet import labelled_grid

        labelled_grid(sheets, grid, columns=8)


@dataclass
class _ConditionJob:
    """The images of one condition: compute in batches, encode on the pool while the next batch
    computes (at most two batches in flight), keep the first ``grid_max`` for the sheet."""

    gen: LoadedGenerator
    spec: str | None
    caption: str
    seed: int
    truncation: float | None
    fmt: str
    out: Path | None
    overwrite: bool
    part: tuple[int, int] = (0, 1)  # (k, n): this process writes the batches b % n == k
    batch_size: int = 64
    pool: ThreadPoolExecutor | None = None  # set when the job runs

    def __post_init__(self) -> None:
        self.sheet: list[Any] = []

    def dest(self, i: int) -> Path | None:
        if self.out is None:
            return None
        return poster_path(self.out, self.caption, i, self.fmt)

    def mine(self, i: int) -> bool:
        return (i // self.batch_size) % self.part[1] == self.part[0]

    def run(self, n: int, batch_size: int, grid_max: int) -> Iterator[Poster]:
        """Batches are always the same blocks of indices (``[0, B)``, ``[B, 2B)``, ...), computed
        whole: a convolution's last bits depend on what shares its batch, so a resumed run, a
        shard and an uninterrupted run must batch alike to write the same bytes."""
        pending: deque[tuple[Poster, Future[None] | None]] = deque()
        for start in range(0, n, batch_size):
            idx = range(start, min(start + batch_size, n))
            shown = [i for i in idx if i < grid_max]  # the grid shows every index
            if not self.mine(start) and not shown:
                continue
            dests = {i: self.dest(i) for i in idx}
            todo = [
                i for i in idx if (d := dests[i]) is not None and (self.overwrite or not d.exists())
            ]
            if not self.mine(start):  # another process's batch, run here for the grid alone
                todo = []
            images = dict(zip(idx, self._compute(list(idx)), strict=True)) if todo or shown else {}
            self.sheet += [images[i] for i in shown]
            if not self.mine(start):
                continue
            for i in idx:
                d = dests[i]
                write = i in todo
                fut = None
                if write:
                    assert self.pool is not None
                    fut = self.pool.submit(encode_atomic, images[i], d, fmt=self.fmt)
                status = OK if write or d is None else SKIPPED
                pending.append((Poster(d and str(d), self.caption, i, self.seed, status), fut))
            while len(pending) > batch_size:
                yield _finish(*pending.popleft())
        while pending:
            yield _finish(*pending.popleft())

    def _compute(self, indices: list[int]) -> Any:
        from posterforge.engine import Engine

        batch = _batch(self.gen, self.spec, indices, self.seed, self.truncation)
        return Engine.to_uint8(batch).numpy()


def _finish(poster: Poster, fut: Future[None] | None) -> Poster:
    if fut is not None:
        fut.result()  # an encode error (disk full, ...) surfaces here, in order
    return poster


def generate(
    conditions: Sequence[str | None] | None, n: int, out: str | Path | None, **options: Any
) -> list[Poster]:
    """Like :func:`generate_iter`, returning the records once everything is written.

    >>> records = generate(["horror"], 4, "posters/", seed=1)  # doctest: +SKIP
    """
    return list(generate_iter(conditions, n, out, **options))
