"""``posterforge eval`` as a Python API: a stored or file generator against a folder of real
images, through any family's :class:`~posterforge.models.BuiltGenerator`.

The real images are read like training data (a labels file, or one sub-folder per label) with
the model's own vocabulary from its weight file, and fitted to the model's image size.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError

if TYPE_CHECKING:
    import torch

    from posterforge.context import Context
    from posterforge.evaluation.evaluator import EvalReport
    from posterforge.jobs.evaluate import EvalJob


def load_real(
    job: EvalJob,
    label_names: list[str] | None,
    vocabulary: dict[str, Any] | None,
    image_size: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(N, 3, H, W)`` real images in ``[0, 1]`` of ``job.data`` and, for a conditional model,
    their ``(N, L)`` multi-hot rows in the model's label order, read as training reads them
    (the job's labels file, columns, template and encoding). The data's problems are printed
    as training prints them; past the first 20, all of them go to ``job.data_report``."""
    import torch

    from posterforge.atomic import write_text_atomic
    from posterforge.images import ImageError
    from posterforge.labels import LabelSet
    from posterforge.training.data import list_images, load_image
    from posterforge.training.labelled import (
        SHOWN,
        LabelledData,
        read_labelled,
        report,
        report_text,
    )

    data, limit = Path(job.data or "."), job.max_real
    if label_names is None:
        paths, rows = list_images(data), None
    else:
        vocab = LabelSet.from_dict(vocabulary or {}, names=label_names)
        found = read_labelled(data, vocab, job.labels, job.labels_format())
        if len(found.problems) > SHOWN:
            try:
                write_text_atomic(job.data_report, report_text(found))
            except OSError as e:
                raise PosterforgeError(f"--data-report {job.data_report}: {e.strerror}") from None
        report(found, found.items, full_list=str(job.data_report), table=False)
        paths = [it.path for it in found.items]
        rows = LabelledData(found.items, vocab).multi_hot()
    if limit is not None:
        paths = paths[:limit]
        rows = rows[:limit] if rows is not None else None
    images, keep = [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path, image_size))
            keep.append(i)
        except ImageError as e:
            print(f"posterforge: warning: {path}: {e.reason} (skipped)", file=sys.stderr)
    if not images:
        raise PosterforgeError(f"--data {data}: no readable images")
    labels = torch.from_numpy(rows[keep]) if rows is not None else None
    return torch.stack(images), labels


def restrict(
    real: torch.Tensor, rows: torch.Tensor | None, names: list[str] | None, only: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor | None, list[str] | None, list[int] | None]:
    """The real images carrying one of the labels ``only`` (empty: all), their rows and names
    over those labels alone, and the labels' columns in the model's order (None: all)."""
    if not only:
        return real, rows, names, None
    if rows is None or names is None:
        raise PosterforgeError("--label: the model is unconditional (it has no labels)")
    unknown = [n for n in only if n not in names]
    if unknown:
        raise PosterforgeError(
            f"--label {', '.join(unknown)}: not the model's (it has {', '.join(names)})"
        )
    columns = [names.index(n) for n in only]
    mine = rows[:, columns]
    keep = mine.sum(dim=1) > 0
    if not bool(keep.any()):
        raise PosterforgeError(f"--label {','.join(only)}: no real images carry them")
    return real[keep], mine[keep], list(only), columns


def evaluate_model(
    job: EvalJob, ctx: Context, progress: Callable[[int, int], None] | None = None
) -> EvalReport:
    """FID, KID, precision/recall and label consistency of ``job.model`` against the images of
    ``job.data`` (see :func:`posterforge.evaluation.evaluate`), with the context's plugins and
    store."""
    import torch

    from posterforge.catalog import resolve_model
    from posterforge.evaluation.evaluator import evaluate
    from posterforge.evaluation.features import InceptionExtractor, default_extractor
    from posterforge.generation import load_generator
    from posterforge.records import Kind

    model = resolve_model(job.model, Kind.GENERATOR, ctx.host, ctx.store)  # once: hash, header
    gen = load_generator(model, device=job.device)
    vocabulary = (model.header or {}).get("vocabulary")
    built = getattr(gen.module, "labels", None)  # a family's own LabelSet, when it keeps one
    if built is not None and hasattr(built, "as_dict"):
        vocabulary = built.as_dict()
    real, rows = load_real(job, gen.label_names, vocabulary, gen.image_size)
    real, rows, names, columns = restrict(real, rows, gen.label_names, job.only)
    if job.inception_weights is not None:
        extractor = InceptionExtractor.from_file(job.inception_weights)
    else:
        extractor = default_extractor(ctx.host)
    extractor = extractor.to(gen.engine.device)

    def sample(row: torch.Tensor | None, m: int) -> torch.Tensor:
        z = torch.randn(m, gen.z_dim)  # evaluate seeds the global generator
        if row is not None and columns is not None:  # a row over --label's labels: the model's
            row = torch.zeros(len(gen.label_names)).index_put_((torch.tensor(columns),), row)
        conditions = None if row is None else row.reshape(1, -1).float().repeat(m, 1)
        return gen(z, conditions).cpu()

    return evaluate(
        real,
        rows,
        sample,
        names,
        job.n,
        extractor,
        seed=job.seed,
        progress=progress,
        batch_size=job.batch_size,
    )
