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
    data: Path,
    labels_file: Path | None,
    label_names: list[str] | None,
    vocabulary: dict[str, Any] | None,
    image_size: tuple[int, int],
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(N, 3, H, W)`` real images in ``[0, 1]`` and, for a conditional model, their ``(N, L)``
    multi-hot rows in the model's label order (``data``: a folder, checked by the job)."""
    import torch

    from posterforge.images import ImageError
    from posterforge.labels import LabelSet
    from posterforge.training.data import list_images, load_image
    from posterforge.training.labelled import LabelledData, read_labelled

    data = Path(data)
    if label_names is None:
        paths, rows = list_images(data), None
    else:
        vocab = LabelSet.from_dict(vocabulary or {}, names=label_names)
        found = read_labelled(data, vocab, labels_file)
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
    real, real_labels = load_real(
        job.data, job.labels, gen.label_names, vocabulary, gen.image_size, job.max_real
    )
    if job.inception_weights is not None:
        extractor = InceptionExtractor.from_file(job.inception_weights)
    else:
        extractor = default_extractor(ctx.host)
    extractor = extractor.to(gen.engine.device)

    def sample(row: torch.Tensor | None, m: int) -> torch.Tensor:
        z = torch.randn(m, gen.z_dim)  # evaluate seeds the global generator
        conditions = None if row is None else row.reshape(1, -1).float().repeat(m, 1)
        return gen(z, conditions).cpu()

    return evaluate(
        real,
        real_labels,
        sample,
        gen.label_names,
        job.n,
        extractor,
        seed=job.seed,
        progress=progress,
        batch_size=job.batch_size,
    )
