"""The Python API. The CLI is a thin layer over these functions.

>>> import posterforge
>>> [s.name for s in posterforge.list_styles()]  # doctest: +SKIP
['spiritedaway', 'vintage', 'yourname']
"""

from __future__ import annotations

from pathlib import Path

from posterforge import catalog
from posterforge.plugins import get_host
from posterforge.store import Store


def list_styles(store: Store | None = None) -> list[catalog.StyleInfo]:
    """Every style that ``translate`` accepts, with whether its weights are present."""
    return catalog.list_styles(get_host(), store or Store())


def list_generators(store: Store | None = None) -> list[catalog.GeneratorInfo]:
    """Every generator model that ``generate`` accepts, with whether its weights are present."""
    return catalog.list_generators(get_host(), store or Store())


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
    return catalog.import_checkpoint(
        Path(path), name, get_host(), store or Store(), fmt=fmt, overwrite=overwrite
    )


def weights_path(spec: str, store: Store | None = None) -> Path:
    """Resolve a weight name or path (explicit path > store > plugin source) to a file."""
    return catalog.resolve_weights(spec, get_host(), store or Store())
