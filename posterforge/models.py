"""The base classes plugins register. Importing this module does not import torch.

A registered class is a cheap description (name, aliases, what it needs). ``build`` makes the
torch module and is called only when a command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch

    from posterforge.weights import Weights


class _Model:
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    needs_weights: ClassVar[bool] = True

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        """Return the network on the CPU in fp32, in eval mode, with ``weights`` loaded."""
        raise NotImplementedError(f"{cls.__name__}.build")


class Translator(_Model):
    """Image-to-image model. The built module maps ``(B, 3, H, W)`` floats in ``[0, 1]`` to the
    same shape and range; it does its own normalisation. ``multiple``: H and W must be multiples of
    it; ``min_size``: and at least this (the engine pads by reflection and crops back).

    The built module may define ``optimize_for(device, dtype) -> nn.Module``: the engine calls it
    once, after moving the module to ``device`` (``dtype`` is the autocast dtype, None for fp32),
    and runs what it returns, e.g. a variant with faster kernels for that device."""

    multiple: ClassVar[int] = 1
    min_size: ClassVar[int] = 1


class Generator(_Model):
    """Noise-and-labels-to-image model. The built module has ``sample(z, labels)`` returning
    ``(B, 3, H, W)`` in ``[0, 1]``, and attributes ``z_dim``, ``label_names`` and ``image_size``
    (W, H)."""
