"""The base classes plugins register. Importing this module does not import torch.

A registered class is a cheap description (name, aliases, what it needs). ``build`` makes the
torch module and is called only when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from posterforge.registry import resolve

if TYPE_CHECKING:
    import torch

    from posterforge.evaluation.features import FeatureExtractor
    from posterforge.weights import Weights


class _Model:
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    needs_weights: ClassVar[bool] = True
    # False: OpenVINO (``--backend openvino|auto``) never converts this family's module, which
    # then always runs on torch, and ``weights export --format onnx`` refuses it (say why in a
    # comment: data-dependent control flow, an op the converter lacks). Conversion failures fall
    # back to torch anyway, with a note.
    exportable: ClassVar[bool] = True

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        """Return the network on the CPU in fp32, in eval mode, with ``weights`` loaded."""
        raise NotImplementedError(f"{cls.__name__}.build")

    @classmethod
    def check(cls, header: dict[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Raise ``ValueError`` when a weight file (its header and its tensors' shapes, nothing
        loaded) cannot be this model: config values of the wrong type or out of range, tensors
        that the config's network would not have. Called before :meth:`build`, so a hostile file
        never makes a network larger than its tensors. The default accepts everything."""


class Translator(_Model):
    """Image-to-image model. The built module maps ``(B, 3, H, W)`` floats in ``[0, 1]`` to the
    same shape and range; it does its own normalisation. ``multiple``: H and W must be multiples of
    it; ``min_size``: and at least this (the engine pads by reflection and crops back).

    The built module may define ``optimize_for(device, dtype) -> nn.Module``: the engine calls it
    once, after moving the module to ``device`` (``dtype`` is the autocast dtype, None for fp32),
    and runs what it returns, e.g. a variant with faster kernels for that device.

    The built module may define ``stabilized(strength) -> nn.Module`` (``translate
    --stabilize``): a module of the same weights whose instance norms are
    :class:`~posterforge.stabilize.SharedNorm` layers (``posterforge.plugin.share_norms`` swaps
    them in for ``nn.InstanceNorm2d``), which normalise each frame with a running average of
    the statistics of the frames before it; its ``optimize_for`` variants must keep them. The
    core resets their state at scene cuts and checkpoints it with a video's segments. A family
    without it is refused by ``--stabilize`` in one line."""

    multiple: ClassVar[int] = 1
    min_size: ClassVar[int] = 1


class Generator(_Model):
    """Noise-and-condition-to-image model. ``build(weights)`` returns a module that satisfies
    :class:`BuiltGenerator`; ``posterforge generate`` uses nothing else of it."""


@runtime_checkable
class BuiltGenerator(Protocol):
    """What a built generator offers the core (seeds, batches, files and grids live in the core;
    what a condition means lives here).

    ``label_names`` is None for an unconditional generator: ``generate`` then needs no
    ``--genre``, and ``conditions``/``caption`` are not called. A conditional one takes label names
    from its weight file, so a user's ``--genre horror`` maps by name, never by a bare index.
    ``truncation`` says what ``--truncation PSI`` means for it: ``"resample"`` (the default) lets
    the core redraw noise entries beyond +-PSI; ``"model"`` passes ``truncation=PSI`` to
    :meth:`sample` (e.g. a StyleGAN lerping w toward the condition's average).
    """

    z_dim: int
    image_size: tuple[int, int]  # (W, H)
    label_names: Sequence[str] | None

    def conditions(self, spec: str) -> torch.Tensor:
        """The condition row ``(C,)`` for a user's spec (a label name, alias or mix); raise
        :class:`~posterforge.errors.PosterforgeError` for one it does not know."""

    def caption(self, spec: str) -> str:
        """The canonical spelling of ``spec``, used in file names and grid captions."""

    def sample(self, z: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` from ``(B, z_dim)`` noise and ``(B, C)`` conditions
        (None when unconditional), both on the module's device."""


@runtime_checkable
class LatentGenerator(Protocol):
    """A generator with an editable latent: W for StyleGAN (one w per sample), z for the cGAN."""

    latent_kind: str  # "w" or "z"

    def to_latent(self, z: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        """``(B, D)``: the latent that noise ``z`` maps to under ``conditions``."""

    def latent_start(self, conditions: torch.Tensor | None) -> torch.Tensor:
        """``(B, D)``: the label's ``w_avg``, or zeros for z (where a projection starts)."""

    def render(self, latent: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]``; ``render(to_latent(z, c), c) == sample(z, c)``."""


@runtime_checkable
class StyleMixer(Protocol):
    """A generator with per-layer styles (StyleGAN)."""

    style_layers: int  # how many per-layer w inputs the synthesis takes

    def render_styles(self, ws: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` from per-layer styles ``ws`` ``(B, style_layers, D)``."""


@dataclass(frozen=True)
class Extractor:
    """A feature extractor that ``posterforge eval`` may measure with, registered by name.

    ``load`` (a function, or a ``"module:function"`` string imported only when an evaluation
    runs) returns the :class:`~posterforge.evaluation.features.FeatureExtractor` with its
    weights loaded; it raises :class:`~posterforge.errors.PosterforgeError` saying how to get
    them when they are missing."""

    name: str
    description: str
    load: Callable[[], FeatureExtractor] | str
    aliases: tuple[str, ...] = ()

    def build(self) -> FeatureExtractor:
        return resolve(self.load)()
