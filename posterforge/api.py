"""The Python API. The CLI is a thin layer over these functions.

>>> import posterforge
>>> [s.name for s in posterforge.list_styles()]  # doctest: +SKIP
['spiritedaway', 'vintage', 'yourname']
>>> records = posterforge.translate(["frames/"], "styled/", style="vintage")  # doctest: +SKIP
>>> posters = posterforge.generate(["horror"], 8, "posters/", seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge import catalog
from posterforge.plugins import get_host
from posterforge.store import Store

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Unpack

    from posterforge.generation import Poster
    from posterforge.jobs.frames import FrameSettings
    from posterforge.translation import Record
    from posterforge.video.records import FilmReport, FrameRecord


def list_styles(store: Store | None = None) -> list[catalog.StyleInfo]:
    """Every style that ``translate`` accepts, with whether its weights are present."""
    return catalog.list_styles(get_host(), store or Store())


def list_generators(store: Store | None = None) -> list[catalog.GeneratorInfo]:
    """Every generator model that ``generate`` accepts, with whether its weights are present."""
    return catalog.list_generators(get_host(), store or Store())


def translate(inputs: Sequence[str | Path], out: str | Path, **options: Any) -> list[Record]:
    """Translate image files and folders into ``out`` (mirroring the tree); one record per input.

    ``options``: ``style`` (default ``"vintage"``), ``batch_size``, ``size``, ``fmt``, ``device``,
    ``precision``, ``compile``, ``overwrite``, ``shard``, ``alpha``, ... (see
    :func:`posterforge.translation.translate_iter`, which yields the records as they finish).
    """
    from posterforge.translation import translate as run

    return run(inputs, out, **options)


def generate(
    conditions: Sequence[str | None] | None, n: int, out: str | Path | None, **options: Any
) -> list[Poster]:
    """``n`` images per condition (e.g. ``["horror", "horror+comedy"]``; None for an
    unconditional model) into ``out``; one record per image.

    ``options``: ``model`` (default ``"posters-demo"``), ``seed``, ``truncation``, ``batch_size``,
    ``fmt``, ``device``, ``precision``, ``overwrite``, ``grid``, ... (see
    :func:`posterforge.generation.generate_iter`).
    """
    from posterforge.generation import generate as run

    return run(conditions, n, out, **options)


def frames(
    films: Sequence[str | Path], out: str | Path, **settings: Unpack[FrameSettings]
) -> list[FrameRecord | FilmReport]:
    """Cut training frames from ``films`` into ``out`` (``OUT/FILM/FILM_00h01m02s345.png``);
    one record per frame written or skipped, then one report per film.

    ``settings`` are the typed fields of :class:`posterforge.jobs.frames.FramesJob`: ``mode``
    (``"every"``, ``"keyframes"`` or ``"scenes"``), ``every`` (seconds), ``scene_threshold``,
    ``size``, ``crop_bars``, ``dedupe`` (bits), ``max_frames``, ``fmt``, ``quality`` and
    ``overwrite``; a bad value raises :class:`~posterforge.errors.PosterforgeError` (one line).

    >>> records = frames(["spirited.mkv"], "frames/", mode="scenes")  # doctest: +SKIP
    """
    from posterforge.jobs.frames import FramesJob
    from posterforge.video.frames import run_frames

    job = FramesJob(films=tuple(Path(f) for f in films), out=Path(out), **settings)
    return list(run_frames(job))


def train(
    kind: str,
    inputs: Mapping[str, str | Path],
    name: str,
    run_dir: str | Path,
    **options: Any,
) -> Path | None:
    """Train a ``"translator"`` or ``"generator"`` with a family's inputs (``{"a": DIR, "b":
    DIR}`` for CycleGAN) and store it as ``name``; see :func:`posterforge.training.run.train`."""
    from posterforge.training.run import train as run

    return run(kind, inputs, name, run_dir, **options)


def import_weights(
    path: str | Path,
    name: str,
    *,
    fmt: str = "auto",
    overwrite: bool = False,
    store: Store | None = None,
) -> Path:
    """Import a foreign checkpoint (e.g. ``latest_net_G_A.pth``) into the store as ``name``.

    The file is read with ``torch.load(weights_only=True)`` and converted through the importer that
    recognises its tensors (or ``fmt``); returns the path of the new ``.safetensors`` file.
    """
    store = store or Store()
    catalog.check_free_name(name, get_host(), store, overwrite=overwrite)
    return catalog.import_checkpoint(
        Path(path), name, get_host(), store, fmt=fmt, overwrite=overwrite
    )


def weights_path(spec: str, store: Store | None = None) -> Path:
    """Resolve a weight name or path (explicit path > store > plugin source) to a file."""
    return catalog.resolve_weights(spec, get_host(), store or Store())
