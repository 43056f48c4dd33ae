"""The Python API. The CLI is a thin layer over these functions.

>>> import posterforge
>>> [s.name for s in posterforge.list_styles()]  # doctest: +SKIP
['spiritedaway', 'vintage', 'yourname']
>>> records = posterforge.translate(["frames/"], "styled/", style="vintage")  # doctest: +SKIP
>>> posters = posterforge.generate(["horror"], 8, "posters/", seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from posterforge import catalog
from posterforge.context import default_context
from posterforge.errors import PosterforgeError
from posterforge.jobs.evaluate import DATA_REPORT as EVAL_DATA_REPORT
from posterforge.latent_api import mix, morph, project  # noqa: F401  (part of the API)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Unpack

    from posterforge.backends import Backend
    from posterforge.context import Context
    from posterforge.evaluation.evaluator import EvalReport
    from posterforge.evaluation.temporal import FlickerReport
    from posterforge.generation import Poster
    from posterforge.jobs.common import AlphaMode, CompileMode, Precision
    from posterforge.jobs.frames import FrameSettings
    from posterforge.onnx_export import Exported
    from posterforge.records import Record
    from posterforge.sizing import Size
    from posterforge.store import Store
    from posterforge.training.progress import TrainProgress
    from posterforge.training.runinfo import RunInfo
    from posterforge.video.records import FilmReport, FrameRecord
    from posterforge.warmup import Warmed


def list_styles(store: Store | None = None) -> list[catalog.StyleInfo]:
    """Every style that ``translate`` accepts, with whether its weights are present."""
    ctx = default_context(store)
    return catalog.list_styles(ctx.host, ctx.store)


def list_generators(store: Store | None = None) -> list[catalog.GeneratorInfo]:
    """Every generator model that ``generate`` accepts, with whether its weights are present."""
    ctx = default_context(store)
    return catalog.list_generators(ctx.host, ctx.store)


def translate(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    style: str = "vintage",
    batch_size: int | None = None,
    size: str | Size | None = None,
    fmt: str | None = None,
    quality: int = 95,
    metadata: bool = True,
    device: str = "auto",
    precision: Precision = "auto",
    compile: CompileMode = "auto",
    backend: Backend = "torch",
    overwrite: bool = False,
    shard: str | None = None,
    alpha: AlphaMode = "keep",
    null: bool = False,
    relative_to: str | Path | None = None,
    vcodec: str | None = None,
    crf: int | None = None,
    workers: int | None = None,
    stabilize: float | None = None,
    ctx: Context | None = None,
) -> list[Record]:
    """Translate image files, folders and videos into ``out`` (mirroring the tree); one record
    per input. The keywords are :class:`~posterforge.jobs.translate.TranslateJob`'s fields (its
    docstring says what each means); ``ctx`` the plugins and store to use (default: this
    process's). For the records as they finish, use :func:`posterforge.translation.start`.
    """
    from posterforge.jobs.translate import TranslateJob
    from posterforge.translation import start

    job = TranslateJob(
        tuple(map(str, inputs)), Path(out), style=style, batch_size=batch_size,
        size=size, fmt=fmt, quality=quality, metadata=metadata, device=device,
        precision=precision, compile=compile, backend=backend, overwrite=overwrite, shard=shard,
        alpha=alpha,
        null=null, relative_to=relative_to, vcodec=vcodec, crf=crf, workers=workers,
        stabilize=stabilize,
    )  # type: ignore[arg-type]  # fmt: skip
    return list(start(job, ctx).records())


def generate(
    conditions: Sequence[str | None] | None,
    n: int,
    out: str | Path | None,
    *,
    model: str = "posters-demo",
    seed: int = 0,
    seeds: tuple[int, ...] | None = None,
    truncation: float | None = None,
    batch_size: int = 64,
    fmt: str = "png",
    device: str = "auto",
    precision: Precision = "auto",
    compile: CompileMode = "auto",
    backend: Backend = "torch",
    overwrite: bool = False,
    grid: str | Path | None = None,
    grid_max: int = 64,
    shard: str | None = None,
    from_latent: str | Path | None = None,
    ctx: Context | None = None,
) -> list[Poster]:
    """``n`` images per condition (e.g. ``["horror", "horror+comedy"]``; None for an
    unconditional model) into ``out``; one record per image. The keywords are
    :class:`~posterforge.jobs.generate.GenerateJob`'s fields (its docstring says what each
    means). For the records as they are written, use :func:`posterforge.generation.start`.
    """
    from posterforge.generation import start
    from posterforge.jobs.generate import GenerateJob

    job = GenerateJob(
        tuple(c for c in conditions or () if c is not None), n, None if out is None else Path(out),
        model=model, seed=seed, seeds=seeds, truncation=truncation, batch_size=batch_size, fmt=fmt,
        device=device, precision=precision, compile=compile, backend=backend, overwrite=overwrite,
        grid=None if grid is None else Path(grid), grid_max=grid_max, shard=shard,
        from_latent=None if from_latent is None else Path(from_latent),
    )  # fmt: skip
    if job.from_latent is not None:
        from posterforge.rerender import start_from_latent

        return list(start_from_latent(job, ctx).records())
    return list(start(job, ctx).records())


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
    only: tuple[str, ...] = (),
    max_real: int | None = None,
    inception_weights: str | Path | None = None,
    data_report: str | Path = EVAL_DATA_REPORT,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 64,
    label_column: str = "",
    path_column: str = "",
    path_template: str = "",
    encoding: str = "utf-8",
    ctx: Context | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """FID, KID, precision/recall and label consistency of the generator ``model`` (a name or
    file) against the real images of ``data``. The keywords are
    :class:`~posterforge.jobs.evaluate.EvalJob`'s fields (``only``: these labels alone; the last
    four read the labels file as ``train`` does); ``progress(done, total)`` counts the images
    through the feature extractor. ``report.skipped_labels`` names the labels with too few real
    images for figures of their own (they count in the overall ones).

    >>> report = evaluate("posters-demo", "posters/", labels="labels.csv")  # doctest: +SKIP
    """
    from posterforge.evaluation.model import evaluate_model
    from posterforge.jobs.evaluate import EvalJob

    job = EvalJob(
        model, Path(data) if data is not None else None, labels=labels, n=n, only=only,
        max_real=max_real, inception_weights=inception_weights, data_report=data_report,
        seed=seed, device=device, batch_size=batch_size, label_column=label_column,
        path_column=path_column, path_template=path_template, encoding=encoding,
    )  # type: ignore[arg-type]  # fmt: skip
    return evaluate_model(job, ctx or default_context(), progress)


def evaluate_video(
    original: str | Path,
    translated: str | Path,
    *,
    scene_threshold: float = 0.06,
    progress: Callable[[int, int], None] | None = None,
) -> FlickerReport:
    """The flicker a translation added: the flow-warped error (Lai et al. 2018) of
    ``translated`` and of ``original`` (each a video file or a folder of frames, frame for frame),
    overall and per shot, and their ratio. The keywords are
    :class:`~posterforge.jobs.evalvideo.EvalVideoJob`'s fields; ``progress(done, total)`` counts
    frames. Needs the ``video-metrics`` extra (OpenCV, PySceneDetect).

    >>> report = evaluate_video("clip.mp4", "clip-vintage.mp4")  # doctest: +SKIP
    >>> report.ratio, [s.ratio for s in report.shots]  # doctest: +SKIP
    """
    from posterforge.evaluation.temporal import measure_clips
    from posterforge.jobs.evalvideo import EvalVideoJob

    job = EvalVideoJob(Path(original), Path(translated), scene_threshold=scene_threshold)
    return measure_clips(job, progress)
def evaluate_translator(
    model: str,
    a: str | Path,
    b: str | Path,
    *,
    reverse: str | None = None,
    size: int = 256,
    device: str = "auto",
    batch_size: int = 64,
    ctx: Context | None = None,
) -> dict[str, Any]:
    """FID of the translator ``model``'s images of ``a`` against ``b`` (``values["fid_a2b"]``)
    and, with its B->A translator ``reverse``, ``fid_b2a`` and the cycle errors: the metrics
    CycleGAN runs compute while training, for a finished model (``posterforge eval --a --b``).

    >>> evaluate_translator("vintage", "photos/", "old/")["values"]["fid_a2b"]  # doctest: +SKIP
    """
    from posterforge.evaluation.translators import evaluate_translator as run
    from posterforge.jobs.evaluate import EvalJob

    job = EvalJob(model, a=Path(a), b=Path(b), reverse=reverse, size=size, device=device,
                  batch_size=batch_size)  # type: ignore[arg-type]  # fmt: skip
    return run(job, ctx or default_context())


def warmup(
    *,
    style: str | None = None,
    model: str | None = None,
    size: str | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    precision: Precision = "auto",
    backend: Backend = "torch",
    ctx: Context | None = None,
) -> Warmed:
    """Compile a style for frames of ``size`` (``WxH``) or a generator ``model`` ahead of time,
    so that later runs of that size compile from the cache. The keywords are
    :class:`~posterforge.jobs.warmup.WarmupJob`'s fields; ``ctx`` the plugins and store to use
    (default: this process's).

    >>> warmup(style="vintage", size="256x256", device="cpu")  # doctest: +SKIP
    """
    from posterforge.jobs.warmup import WarmupJob
    from posterforge.warmup import run_warmup

    job = WarmupJob(
        style=style, model=model, size=size, batch_size=batch_size, device=device,
        precision=precision, backend=backend,
    )  # fmt: skip
    return run_warmup(job, ctx or default_context())


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
    ctx = default_context(store)
    catalog.check_free_name(name, ctx.host, ctx.store, overwrite=overwrite)
    return catalog.import_checkpoint(
        Path(path), name, ctx.host, ctx.store, fmt=fmt, overwrite=overwrite
    )


def export_weights(
    model: str,
    out: str | Path,
    *,
    fmt: str = "onnx",
    size: str | None = None,
    dynamic: bool = False,
    overwrite: bool = False,
    ctx: Context | None = None,
) -> Exported:
    """Write the translator or generator ``model`` as a standard ONNX file ``out``, with our
    metadata, checked against torch first; the keywords are
    :class:`~posterforge.jobs.weights.WeightsExportJob`'s fields.

    >>> posterforge.export_weights("vintage", "vintage.onnx", size="256x256")  # doctest: +SKIP
    """
    from posterforge.jobs.weights import WeightsExportJob
    from posterforge.onnx_export import export_onnx

    job = WeightsExportJob(
        model, Path(out), fmt=fmt, size=size, dynamic=dynamic, overwrite=overwrite
    )  # type: ignore[arg-type]
    return export_onnx(job, ctx)


def report(
    runs: Sequence[str | Path],
    out: str | Path = "report.html",
    *,
    overwrite: bool = False,
    frames: int = 40,
) -> Path:
    """Write one self-contained HTML page about the training ``runs`` (their folders) to ``out``:
    loss and metric curves overlaid, sample timelines, recipe, provenance, time per step and the
    best checkpoint; returns ``out``. The keywords are
    :class:`~posterforge.jobs.report.ReportJob`'s fields.

    >>> posterforge.report(["runs/a", "runs/b"], "ab.html")  # doctest: +SKIP
    """
    from posterforge.jobs.report import ReportJob
    from posterforge.run_report import write_report

    job = ReportJob(tuple(Path(r) for r in runs), Path(out), overwrite=overwrite, frames=frames)
    return write_report(job)


def list_runs(
    folder: str | Path = ".", *, on_skip: Callable[[str], None] | None = None
) -> list[RunInfo]:
    """The training runs under ``folder`` (itself, when it is a run; three levels down), each
    with its family, step, status (running, finished, interrupted), best metric and last
    checkpoint, as :class:`~posterforge.training.runinfo.RunInfo` (``as_dict()`` for JSON).
    A run folder that cannot be read is left out, with its one-line reason to ``on_skip``."""
    from posterforge.jobs.report import RunsJob
    from posterforge.training.runinfo import find_runs, read_run

    job = RunsJob(Path(folder))
    found = []
    for path in find_runs(job.folder):
        try:
            found.append(read_run(path))
        except PosterforgeError as e:
            if on_skip is not None:
                on_skip(str(e))
    return found


def weights_path(spec: str, store: Store | None = None) -> Path:
    """Resolve a weight name or path (explicit path > store > plugin source) to a file."""
    ctx = default_context(store)
    return catalog.resolve_weights(spec, ctx.host, ctx.store)


def _document() -> None:
    """The keywords of translate, generate and warmup, described in their jobs (one place for
    each)."""
    from posterforge.jobs.evalvideo import EvalVideoJob
    from posterforge.jobs.generate import GenerateJob
    from posterforge.jobs.reference import document
    from posterforge.jobs.report import ReportJob
    from posterforge.jobs.translate import TranslateJob
    from posterforge.jobs.warmup import WarmupJob
    from posterforge.jobs.weights import WeightsExportJob

    document(translate, TranslateJob)
    document(generate, GenerateJob)
    document(warmup, WarmupJob)
    document(evaluate_video, EvalVideoJob)
    document(export_weights, WeightsExportJob)
    document(report, ReportJob)


_document()
