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
from posterforge.context import default_context
from posterforge.plugins import get_host
from posterforge.store import Store

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from posterforge.context import Context
    from posterforge.evaluation.evaluator import EvalReport
    from posterforge.generation import Poster
    from posterforge.training.progress import TrainProgress
    from posterforge.translation import Record


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
    films: Sequence[str | Path], out: str | Path, *, overwrite: bool = False, **options: Any
) -> list[Any]:
    """Cut training frames from ``films`` into ``out`` (``OUT/FILM/FILM_00h01m02s345.png``);
    one record per frame written or skipped, then one report per film.

    ``options``: ``mode`` (``"every"``, ``"keyframes"`` or ``"scenes"``), ``every`` (seconds),
    ``scene_threshold``, ``size``, ``crop_bars``, ``dedupe`` (bits), ``max_frames``, ``fmt``,
    ``quality`` (see :class:`posterforge.video.frames.FrameOptions`).

    >>> records = frames(["spirited.mkv"], "frames/", mode="scenes")  # doctest: +SKIP
    """
    from posterforge.video.frames import FrameOptions, cut_frames

    return list(cut_frames(films, out, FrameOptions(**options), overwrite=overwrite))


def train(
    kind: str,
    inputs: Mapping[str, str | Path | None],
    name: str,
    run_dir: str | Path,
    *,
    arch: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    options: Mapping[str, str | bool | None] | None = None,
    init_from: str | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
    ctx: Context | None = None,
    progress: TrainProgress | None = None,
) -> Path | None:
    """Train a ``"translator"`` or ``"generator"`` with a family's inputs (``{"a": DIR, "b":
    DIR}`` for CycleGAN) and store it as ``name``; returns the stored file (None on DDP ranks
    other than 0). The keywords are :meth:`~posterforge.jobs.train.TrainJob.create`'s (``arch``:
    the family, ``preset``: its recipe, ``overrides``: ``--set`` items, ``options``: its declared
    recipe options); ``ctx`` the plugins and store (default: this process's); ``progress``
    receives the steps and notes (default: plain lines on stderr). Resume and export:
    :func:`posterforge.training.run.resume` and :func:`~posterforge.training.run.export`.

    >>> train("translator", {"a": "a/", "b": "b/"}, "mine", "runs/mine")  # doctest: +SKIP
    """
    from posterforge.jobs.train import TrainJob
    from posterforge.training.run import start

    ctx = ctx or default_context()
    job = TrainJob.create(
        ctx, kind, inputs, name, run_dir, arch=arch, preset=preset, overrides=overrides,
        options=options, init_from=init_from, max_steps=max_steps, seed=seed, device=device,
        overwrite=overwrite,
    )  # fmt: skip
    return start(job, ctx, progress)


def evaluate(
    model: str,
    data: str | Path,
    *,
    labels: str | Path | None = None,
    n: int = 1000,
    max_real: int | None = None,
    inception_weights: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 64,
    ctx: Context | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """FID, KID, precision/recall and label consistency of the generator ``model`` (a name or
    file) against the real images of ``data``. The keywords are
    :class:`~posterforge.jobs.evaluate.EvalJob`'s fields; ``progress(done, total)`` counts the
    images through the feature extractor.

    >>> report = evaluate("posters-demo", "posters/", labels="labels.csv")  # doctest: +SKIP
    """
    from posterforge.evaluation.model import evaluate_model
    from posterforge.jobs.evaluate import EvalJob

    job = EvalJob(
        model, Path(data) if data is not None else None, labels=labels, n=n,
        max_real=max_real, inception_weights=inception_weights, seed=seed, device=device,
        batch_size=batch_size,
    )  # type: ignore[arg-type]  # fmt: skip
    return evaluate_model(job, ctx or default_context(), progress)


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
