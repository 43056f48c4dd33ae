"""Generator quality, offline: FID, KID, precision/recall and label consistency.

The core of ``posterforge eval``; knows no model family and no label vocabulary::

    from posterforge.context import default_context
    from posterforge.evaluation import default_extractor, evaluate
    extractor = default_extractor(default_context())  # the first one a plugin registered
    report = evaluate(real, real_labels, sample, label_names, n=1000, extractor=extractor)
    print(report.extractor, report.fid, report.recall)

- :mod:`.features`: the feature extractors' base, Inception, and the look-up of the ones plugins
  register (default: the first registered).
- :mod:`.metrics`: FID and KID (torchmetrics) and k-NN precision/recall on features.
- :mod:`.consistency`: the label classifier behind the consistency score.
- :mod:`.evaluator`: ``evaluate`` and its ``EvalReport``; input checks.
- :mod:`.model`: ``evaluate_model``: a stored generator against a folder of real images.
- :mod:`.temporal` and :mod:`.flow`: ``eval-video``, the flow-warped error of a translated clip
  against its input, per shot (OpenCV optical flow, PySceneDetect cuts).

Importing this package imports neither torch nor any weights; names load on first access.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "evaluate": "evaluator",
    "evaluate_model": "model",
    "EvalReport": "evaluator",
    "GroupScores": "evaluator",
    "MIN_SAMPLES": "evaluator",
    "FeatureExtractor": "features",
    "InceptionExtractor": "features",
    "default_extractor": "features",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"posterforge.evaluation.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'posterforge.evaluation' has no attribute {name!r}")
