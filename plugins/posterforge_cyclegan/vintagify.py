"""The vintagify package's checkpoint: where it lies, and the sha256 that names it.

Both the ``vintage`` weight source and the ``vintagify-encoder-v1`` feature extractor read it,
without importing vintagify (which imports matplotlib) and without importing torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

VINTAGIFY_FILE = "resources/G_A2B_epoch33.pth"
# The exact checkpoint `vintagify-encoder-v1` is defined by: other weights, other numbers.
VINTAGIFY_SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"
ENCODER_NAME = "vintagify-encoder-v1"


def locate_vintagify() -> Path | None:
    """The checkpoint inside the installed vintagify package, found without importing it."""
    spec = importlib.util.find_spec("vintagify")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / VINTAGIFY_FILE
    return path if path.is_file() else None
