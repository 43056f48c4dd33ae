"""The Python API of the generator tools that work in a model's latent space: ``project``,
``mix`` and ``morph`` (re-exported by :mod:`posterforge.api` and the package root). Each keyword
is a field of the command's job, typed as there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from posterforge.context import Context
    from posterforge.jobs.common import CompileMode, Precision
    from posterforge.jobs.project import Fit
    from posterforge.mixing import MixGrid
    from posterforge.morphing import MorphRecord
    from posterforge.projection import Projected


def project(
    posters: Sequence[str | Path],
    out: str | Path,
    *,
    model: str = "posters-demo",
    genre: str | None = None,
    as_labels: Sequence[str] = (),
    steps: int = 100,
    lr: float = 0.1,
    seed: int = 0,
    fit: Fit = "crop",
    feature_weight: float = 0.1,
    features: str | None = None,
    device: str = "auto",
    overwrite: bool = False,
    ctx: Context | None = None,
) -> list[Projected]:
    """Project each poster into the model's latent space: one record per poster. For the
    records as they land, use :func:`posterforge.projection.start`."""
    from posterforge.jobs.project import ProjectJob
    from posterforge.projection import start

    job = ProjectJob(
        tuple(Path(p) for p in posters), Path(out), model=model, genre=genre,
        as_labels=tuple(as_labels), steps=steps, lr=lr, seed=seed, fit=fit,
        feature_weight=feature_weight, features=features, device=device, overwrite=overwrite,
    )  # fmt: skip
    return list(start(job, ctx).records())


def mix(
    rows: Sequence[int] | str,
    cols: Sequence[int] | str,
    out: str | Path,
    *,
    model: str = "posters-stylegan",
    layers: str = "coarse",
    genre: str | None = None,
    truncation: float | None = None,
    device: str = "auto",
    overwrite: bool = False,
    ctx: Context | None = None,
) -> MixGrid:
    """A style mixing grid written to ``out``."""
    from posterforge.jobs.mix import MixJob
    from posterforge.mixing import mix as run_mix

    job = MixJob(
        rows, cols, Path(out), model=model, layers=layers, genre=genre, truncation=truncation,
        device=device, overwrite=overwrite,
    )  # type: ignore[arg-type]  # fmt: skip
    return run_mix(job, ctx)


def morph(
    out: str | Path,
    conditions: Sequence[str] | None = None,
    *,
    model: str = "posters-demo",
    seeds: Sequence[int] | str = (0,),
    seconds: float = 4.0,
    fps: float = 24.0,
    space: str = "auto",
    batch_size: int = 16,
    vcodec: str | None = None,
    crf: int | None = None,
    device: str = "auto",
    precision: Precision = "auto",
    compile: CompileMode = "auto",
    overwrite: bool = False,
    ctx: Context | None = None,
) -> MorphRecord:
    """A morph video into ``out`` (.mp4, .webm, ... or an animated .gif or .webp) through the
    stops ``conditions`` x ``seeds`` (one of them may be a single value); its record. The
    keywords are :class:`~posterforge.jobs.morph.MorphJob`'s fields (its docstring says what
    each means). A killed run resumes; the same arguments write the same file.

    >>> posterforge.morph("m.mp4", ["horror", "comedy"], seeds=[1], seconds=2)  # doctest: +SKIP
    """
    from posterforge.jobs.morph import MorphJob
    from posterforge.morphing import start

    job = MorphJob(
        Path(out), tuple(conditions or ()), model=model,
        seeds=seeds if isinstance(seeds, str) else tuple(seeds), seconds=seconds, fps=fps,
        space=space, batch_size=batch_size, vcodec=vcodec, crf=crf, device=device,
        precision=precision, compile=compile, overwrite=overwrite,
    )  # type: ignore[arg-type]  # fmt: skip
    return next(iter(start(job, ctx).records()))



def _document() -> None:
    from posterforge.jobs.mix import MixJob
    from posterforge.jobs.morph import MorphJob
    from posterforge.jobs.project import ProjectJob
    from posterforge.jobs.reference import document

    document(project, ProjectJob)
    document(mix, MixJob)
    document(morph, MorphJob)


_document()
