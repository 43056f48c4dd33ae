"""Generate posters: sample a conditional generator by genre, as tensors, images or files.

    model name ─► weights ─► built generator (device, precision) ─► noise per poster index ─►
    batches ─► uint8 ─► encode + atomic rename (worker threads) ─► one Poster record per file

Poster ``i`` of a run with seed ``s`` always gets the same noise vector, whatever the batch size,
``-n`` or genre, so the same seed gives the same posters on the same device, a re-run skips what
exists (``overwrite`` to redo), and poster ``i`` of two genres differs only by its genre.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.errors import PosterforgeError
from posterforge.images import FORMATS, encode_atomic, format_for
from posterforge.labels import LabelSet

if TYPE_CHECKING:
    import torch

    from posterforge.store import Store

DEFAULT_MODEL = "posters-demo"
OK, SKIPPED = "ok", "skipped"


@dataclass
class Poster:
    """One generated poster; ``--json`` prints one of these per line."""

    path: str | None
    genre: str
    index: int
    seed: int
    status: str = OK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedGenerator:
    """A built generator on its device with what is needed to condition it by name."""

    module: torch.nn.Module
    device: torch.device
    labels: LabelSet
    z_dim: int
    image_size: tuple[int, int]  # (W, H)
    precision: str = "fp32"

    def conditions(self, genre: str, n: int) -> torch.Tensor:
        """The label rows for ``n`` posters of ``genre`` (a name or a mix, see
        :meth:`posterforge.labels.LabelSet.vector`)."""
        import torch

        return torch.tensor([self.labels.vector(genre)]).repeat(n, 1)

    def __call__(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Float ``(B, 3, H, W)`` in ``[0, 1]`` on the device, from CPU ``z`` and labels."""
        import torch

        from posterforge.engine import PRECISIONS

        dtype = PRECISIONS[self.precision]
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=bool(dtype)),
        ):
            z, labels = z.to(self.device), labels.to(self.device)
            return self.module.sample(z, labels).float()


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
    store: Store | None = None,
) -> LoadedGenerator:
    """Resolve a generator (a stored name, a plugin's weights or a ``.safetensors`` file), build
    it on ``device`` and return it ready to sample."""
    from posterforge.catalog import resolve_generator
    from posterforge.engine import PRECISIONS, resolve_device
    from posterforge.plugins import get_host
    from posterforge.store import Store
    from posterforge.weights import load_weights

    if precision not in PRECISIONS:
        raise PosterforgeError(f"invalid precision {precision!r}: use fp32, fp16 or bf16")
    cls, path = resolve_generator(model, get_host(), store or Store())
    weights = load_weights(path)
    dev = resolve_device(device)
    module = cls.build(weights).to(dev).eval().requires_grad_(False)
    return LoadedGenerator(
        module,
        dev,
        LabelSet.genres(module.label_names),
        int(module.z_dim),
        tuple(module.image_size),
        precision,
    )


def sample(
    gen: LoadedGenerator,
    genre: str,
    n: int,
    *,
    seed: int = 0,
    truncation: float | None = None,
    batch_size: int = 64,
    start: int = 0,
) -> torch.Tensor:
    """``n`` posters of ``genre`` as a float ``(n, 3, H, W)`` CPU tensor in ``[0, 1]``; poster
    ``k`` has index ``start + k`` (see the module docstring). Nothing touches the disk."""
    import torch

    out = [
        gen(
            noise(range(i, min(i + batch_size, start + n)), gen.z_dim, seed, truncation),
            gen.conditions(genre, min(batch_size, start + n - i)),
        ).cpu()
        for i in range(start, start + n, batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, 3, gen.image_size[1], gen.image_size[0])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float ``(B, 3, H, W)`` in ``[0, 1]`` to uint8 ``(B, H, W, 3)`` on the CPU."""
    import torch

    return x.clamp(0, 1).mul(255).round().to("cpu", torch.uint8).permute(0, 2, 3, 1)


def generate_images(model: str = DEFAULT_MODEL, genre: str = "horror", n: int = 8, **kw: Any):
    """``n`` posters of ``genre`` as PIL images (``kw``: seed, truncation, batch_size, device,
    precision).

    >>> posters = generate_images("posters-demo", "horror", 4, seed=1)  # doctest: +SKIP
    """
    from PIL import Image

    opts = {k: kw.pop(k) for k in ("device", "precision", "store") if k in kw}
    gen = load_generator(model, **opts)
    return [Image.fromarray(a.numpy()) for a in to_uint8(sample(gen, genre, n, **kw))]


def file_stem(caption: str) -> str:
    """A file-name-safe form of a genre caption (``horror+comedy:0.5`` -> ``horror+comedy-0.5``)."""
    return re.sub(r"[^A-Za-z0-9+._-]", "-", caption)


def generate_iter(
    genres: Sequence[str],
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
    overwrite: bool = False,
    grid: str | Path | None = None,
    grid_max: int = 64,
    store: Store | None = None,
    generator: LoadedGenerator | None = None,
) -> Iterator[Poster]:
    """Generate ``n`` posters for each genre in ``genres``; write them under ``out`` (as
    ``GENRE-00000.png``, ...) and/or a contact sheet to ``grid`` (the first ``grid_max``
    posters of each genre, captioned). Yields one :class:`Poster` per poster as it is written.

    Configuration errors (unknown model or genre, bad format) raise before anything is written.
    """
    if n < 0:
        raise PosterforgeError("-n must not be negative")
    if batch_size < 1:
        raise PosterforgeError("batch size must be at least 1")
    if out is None and grid is None:
        raise PosterforgeError("nothing to write: pass --out DIR and/or --grid FILE")
    if not genres:
        raise PosterforgeError("name at least one --genre")
    try:
        fmt = format_for("." + fmt.lower().lstrip("."))
    except ValueError:
        raise PosterforgeError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}") from None
    gen = generator or load_generator(model, device=device, precision=precision, store=store)
    captions = [gen.labels.caption(g) for g in genres]  # unknown genres fail here, up front
    out = Path(out) if out is not None else None
    sheets: list[tuple[str, list[Any]]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pf-encode") as pool:
        for caption in captions:
            job = _GenreJob(gen, caption, seed, truncation, fmt, out, overwrite, pool)
            count = n if out is not None else min(n, grid_max)  # no files: only the grid's
            yield from job.run(count, batch_size, grid_max if grid is not None else 0)
            sheets.append((caption, job.sheet))
    if grid is not None:
        from posterforge.sheet import labelled_grid

        labelled_grid(sheets, grid, columns=8)


@dataclass
class _GenreJob:
    """The posters of one genre: compute in batches, encode on the pool while the next batch
    computes (at most two batches in flight), keep the first ``grid_max`` for the sheet."""

    gen: LoadedGenerator
    caption: str
    seed: int
    truncation: float | None
    fmt: str
    out: Path | None
    overwrite: bool
    pool: ThreadPoolExecutor

    def __post_init__(self) -> None:
        self.sheet: list[Any] = []

    def dest(self, i: int) -> Path | None:
        if self.out is None:
            return None
        return self.out / f"{file_stem(self.caption)}-{i:05d}{FORMATS[self.fmt].suffix}"

    def run(self, n: int, batch_size: int, grid_max: int) -> Iterator[Poster]:
        pending: deque[tuple[Poster, Future[None] | None]] = deque()
        for start in range(0, n, batch_size):
            idx = range(start, min(start + batch_size, n))
            dests = {i: self.dest(i) for i in idx}
            todo = [
                i for i in idx if (d := dests[i]) is not None and (self.overwrite or not d.exists())
            ]
            run = list(idx) if start < grid_max else todo
            images = dict(zip(run, self._compute(run), strict=True)) if run else {}
            self.sheet += [images[i] for i in idx if i < grid_max]
            for i in idx:
                d = dests[i]
                write = i in todo
                fut = self.pool.submit(encode_atomic, images[i], d, fmt=self.fmt) if write else None
                status = OK if write or d is None else SKIPPED
                pending.append((Poster(d and str(d), self.caption, i, self.seed, status), fut))
            while len(pending) > batch_size:
                yield _finish(*pending.popleft())
        while pending:
            yield _finish(*pending.popleft())

    def _compute(self, indices: list[int]) -> Any:
        z = noise(indices, self.gen.z_dim, self.seed, self.truncation)
        return to_uint8(self.gen(z, self.gen.conditions(self.caption, len(indices)))).numpy()


def _finish(poster: Poster, fut: Future[None] | None) -> Poster:
    if fut is not None:
        fut.result()  # an encode error (disk full, ...) surfaces here, in order
    return poster


def generate(genres: Sequence[str], n: int, out: str | Path | None, **options: Any) -> list[Poster]:
    """Like :func:`generate_iter`, returning the records once everything is written."""
    return list(generate_iter(genres, n, out, **options))
