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

    from posterforge.evaluation.evaluator import EvalReport
    from posterforge.store import Store


def load_real(
    data: Path,
    labels_file: Path | None,
    label_names: list[str] | None,
    vocabulary: dict[str, Any] | None,
    image_size: tuple[int, int],
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(N, 3, H, W)`` real images in ``[0, 1]`` and, for a conditional model, their ``(N, L)``
    multi-hot rows in the model's label order."""
    import torch

    from posterforge.images import ImageError
    from posterforge.labels import LabelSet
    from posterforge.training.data import list_images, load_image
    from posterforge.training.labelled import LabelledData, read_labelled

    data = Path(data)
    if not data.is_dir():
        raise PosterforgeError(f"--data {data}: folder not found")
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
    model: str,
    data: str | Path,
    *,
    labels: str | Path | None = None,
    n: int = 1000,
    device: str = "auto",
    inception_weights: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 64,
    max_real: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    store: Store | None = None,
) -> EvalReport:
    """FID, KID, precision/recall and label consistency of ``model`` against the images of
    ``data`` (see :func:`posterforge.evaluation.evaluate`)."""
    import torch

    from posterforge.catalog import resolve_generator
    from posterforge.evaluation.evaluator import evaluate
    from posterforge.evaluation.features import InceptionExtractor, default_extractor
    from posterforge.generation import load_generator
    from posterforge.plugins import get_host
    from posterforge.store import Store
    from posterforge.weights import read_header

    if n < 1:
        raise PosterforgeError("-n must be at least 1")
    store = store or Store()
    gen = load_generator(model, device=device, store=store)
    _, path = resolve_generator(model, get_host(), store)
    header = read_header(path)
    vocabulary = header.get("vocabulary")
    built = getattr(gen.module, "labels", None)  # a family's own LabelSet, when it keeps one
    if built is not None and hasattr(built, "as_dict"):
        vocabulary = built.as_dict()
    real, real_labels = load_real(
        Path(data),
        Path(labels) if labels is not None else None,
        gen.label_names,
        vocabulary,
        gen.image_size,
        max_real,
    )
    if inception_weights is not None:
        extractor = InceptionExtractor.from_file(Path(inception_weights))
    else:
        extractor = default_extractor(get_host())
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
        n,
        extractor,
        progress,
        seed,
        batch_size=batch_size,
    )
