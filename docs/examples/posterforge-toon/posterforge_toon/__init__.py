"""posterforge-toon: a cartoon look for posterforge, with no weights to train or download.

The entry point in pyproject.toml names this module, and posterforge calls the hook below when a
command runs. Everything it uses of posterforge comes from ``posterforge.plugin``, the API for
plugins. This module stays cheap to import (no torch): the filter lives in ``filters``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posterforge.plugin import Translator, hookimpl

if TYPE_CHECKING:
    import torch

    from posterforge.plugin import Weights


class Toon(Translator):
    name = "toon"
    aliases = ("cartoon",)
    description = "Cartoon look: smoothed, posterised colour with dark edge lines (no weights)"
    needs_weights = False
    multiple = 1  # no downsampling: any size works
    min_size = 3  # the 5x5 filters reflect-pad by 2 pixels, which needs 3

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        from posterforge_toon.filters import ToonFilter

        return ToonFilter().eval()


@hookimpl
def register_translators(register):
    register(Toon)
