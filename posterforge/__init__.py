"""posterforge: GAN image translation and generation, extensible through plugins.

The Python API lives in :mod:`posterforge.api`; its functions are importable from here without
importing torch until they are called.
"""

from __future__ import annotations

from typing import Any

from posterforge.hookspecs import hookimpl
from posterforge.models import BuiltGenerator, Generator, Translator
from posterforge.version import __version__

_API = (
    "translate",
    "generate",
    "project",
    "mix",
    "morph",
    "frames",
    "train",
    "evaluate",
    "evaluate_video",
    "evaluate_translator",
    "list_styles",
    "list_generators",
    "import_weights",
    "export_weights",
    "weights_path",
    "report",
    "list_runs",
)

__all__ = ["BuiltGenerator", "Generator", "Translator", "__version__", "hookimpl", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from posterforge import api

        return getattr(api, name)
    raise AttributeError(f"module 'posterforge' has no attribute {name!r}")
