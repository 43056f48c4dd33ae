"""``posterforge eval --model STYLE --a A_DIR --b B_DIR``: a finished translator measured on two
folders with the metrics CycleGAN runs compute while training (one implementation,
:func:`.translation.translator_metrics`): FID of ``G(A)`` against B and, with the B->A
translator (``--reverse``), FID of ``G_BA(B)`` against A and both cycle errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    import torch

    from posterforge.context import Context
    from posterforge.jobs.evaluate import EvalJob

MIN_IMAGES = 10  # per folder: FID from fewer is noise (as the held-out split of training)


def load_folder(folder: Path, option: str, size: int) -> torch.Tensor:
    """``(N, 3, size, size)`` in ``[0, 1]`` (centre-cropped) of the images under ``folder``;
    an unreadable one is skipped with a warning; too few readable ones is one line."""
    import torch

    from posterforge.images import ImageError
    from posterforge.training.data import list_images, load_image

    paths = list_images(folder)
    images = []
    for path in paths:
        try:
            images.append(load_image(path, size))
        except ImageError as e:
            print(f"posterforge: warning: {path}: {e.reason} (skipped)", file=sys.stderr)
    if len(images) < MIN_IMAGES:
        found = f"{len(images)} readable of {len(paths)} images" if paths else "no images"
        raise PosterforgeError(
            f"{option} {folder}: {found}; the FID needs at least {MIN_IMAGES} a folder"
        )
    return torch.stack(images)


def evaluate_translator(job: EvalJob, ctx: Context) -> dict[str, Any]:
    """``{"model", "reverse", "extractor", "n_a", "n_b", "size", "values": {...}}`` for the
    translator ``job.model`` (and ``job.reverse``) on ``job.a`` and ``job.b``."""
    from posterforge.catalog import resolve_model
    from posterforge.evaluation.features import InceptionExtractor, default_extractor
    from posterforge.evaluation.translation import translator_metrics
    from posterforge.records import Kind
    from posterforge.translation import load_engine

    assert job.a is not None and job.b is not None
    models = [resolve_model(job.model, Kind.TRANSLATOR, ctx.host, ctx.store)]
    if job.reverse is not None:
        models.append(resolve_model(job.reverse, Kind.TRANSLATOR, ctx.host, ctx.store))
    a, b = load_folder(job.a, "--a", job.size), load_folder(job.b, "--b", job.size)
    engines = [load_engine(m, device=job.device, compile="off", ctx=ctx) for m in models]
    if job.inception_weights is not None:
        extractor = InceptionExtractor.from_file(job.inception_weights)
    else:
        extractor = default_extractor(ctx.host)
    device = engines[0].device
    values = translator_metrics(
        engines[0].forward,
        engines[1].forward if len(engines) > 1 else None,
        a.to(device),
        b.to(device),
        extractor=extractor,
        batch_size=job.batch_size,
    )
    return {
        "model": job.model,
        "reverse": job.reverse,
        "extractor": extractor.name,
        "n_a": len(a),
        "n_b": len(b),
        "size": job.size,
        "values": values,
    }
