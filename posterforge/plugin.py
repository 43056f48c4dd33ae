"""The API for plugin authors: every name a posterforge plugin imports, from one module.

A plugin (first-party or third-party) imports ``posterforge.plugin`` and nothing else of the core,
so the core's modules can move while this list stays::

    from posterforge.plugin import Kind, Translator, hookimpl

    class Sepia(Translator):
        name = "sepia"
        ...

    @hookimpl
    def register_translators(register):
        register(Sepia)

Importing this module is cheap: it imports neither torch nor the modules behind the names; each
name is imported on first use (the training building blocks import torch then). The groups:

- the contract: :func:`hookimpl`, :class:`Translator`, :class:`Generator`, :class:`BuiltGenerator`
  (optional capabilities: :class:`LatentGenerator`, :class:`StyleMixer`), :class:`Kind`,
  :class:`Family` with :class:`Input` and :class:`Option` (its factories may
  take the run's :class:`Context`), :class:`Importer`,
  :class:`WeightSource`, :class:`Extractor` with :class:`FeatureExtractor`; for
  ``translate --stabilize``, :class:`SharedNorm` and :func:`share_norms` (see
  :class:`Translator`);
- weight files: :class:`Weights`, :func:`make_header`, :func:`check_shapes`,
  :func:`shipped_source`, :func:`ship_weights`; a network's config stated once, as a frozen
  :class:`NetConfig` dataclass whose fields declare their values (:func:`between`, :func:`flag`,
  :func:`size_between`), or checked by hand (:func:`check_config`);
- labels and presets: :class:`LabelSet`, :func:`labels_from_header`, :func:`shipped`;
- training: the task and stream protocols, recipes, schedules, EMA, augmentation, precision,
  data streams and the DDP helpers (:mod:`distributed`) of :mod:`posterforge.training`;
- tools for a plugin's scripts and tests: :func:`atomic_write`, :class:`Store`,
  :func:`export_run`, :func:`discover`.
"""

# ruff: noqa: F401 (the imports under TYPE_CHECKING are re-exports, unused here)
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# name -> (module, attribute there; "" for the module itself)
_EXPORTS: dict[str, tuple[str, str]] = {
    # the contract
    "hookimpl": ("posterforge.hookspecs", "hookimpl"),
    "Translator": ("posterforge.models", "Translator"),
    "Generator": ("posterforge.models", "Generator"),
    "BuiltGenerator": ("posterforge.models", "BuiltGenerator"),
    "LatentGenerator": ("posterforge.models", "LatentGenerator"),
    "StyleMixer": ("posterforge.models", "StyleMixer"),
    "Kind": ("posterforge.records", "Kind"),
    "Context": ("posterforge.context", "Context"),
    "Family": ("posterforge.family", "Family"),
    "Input": ("posterforge.family", "Input"),
    "Option": ("posterforge.family", "Option"),
    "labelled_inputs": ("posterforge.family", "labelled_inputs"),
    "labelled_options": ("posterforge.family", "labelled_options"),
    "recipe_from_dict": ("posterforge.family", "recipe_from_dict"),
    "Importer": ("posterforge.weights", "Importer"),
    "WeightSource": ("posterforge.weights", "WeightSource"),
    "NATIVE": ("posterforge.weights", "NATIVE"),
    "Extractor": ("posterforge.models", "Extractor"),
    "FeatureExtractor": ("posterforge.evaluation.features", "FeatureExtractor"),
    "PosterforgeError": ("posterforge.errors", "PosterforgeError"),
    "SharedNorm": ("posterforge.stabilize", "SharedNorm"),
    "share_norms": ("posterforge.stabilize", "share_norms"),
    "WeightsError": ("posterforge.errors", "WeightsError"),
    # weight files
    "Weights": ("posterforge.weights", "Weights"),
    "make_header": ("posterforge.weights", "make_header"),
    "check_config": ("posterforge.weights", "check_config"),
    "NetConfig": ("posterforge.netconfig", "NetConfig"),
    "between": ("posterforge.netconfig", "between"),
    "flag": ("posterforge.netconfig", "flag"),
    "size_between": ("posterforge.netconfig", "size_between"),
    "check_shapes": ("posterforge.weights", "check_shapes"),
    "shipped_source": ("posterforge.weights", "shipped_source"),
    "ship_weights": ("posterforge.weights", "ship"),
    # labels and presets
    "LabelSet": ("posterforge.labels", "LabelSet"),
    "labels_from_header": ("posterforge.labels", "labels_from_header"),
    "shipped": ("posterforge.presets", "shipped"),
    # training building blocks
    "TrainingTask": ("posterforge.training.task", "TrainingTask"),
    "scalars": ("posterforge.training.task", "scalars"),
    "BatchStream": ("posterforge.training.harness", "BatchStream"),
    "Schedule": ("posterforge.training.schedules", "Schedule"),
    "update_ema": ("posterforge.training.ema", "update_ema"),
    "ema_decay_at": ("posterforge.training.ema", "ema_decay_at"),
    "label_grid": ("posterforge.training.ema", "label_grid"),
    "make_augment": ("posterforge.training.augment", "make_augment"),
    "make_diffaugment": ("posterforge.training.augment", "make_diffaugment"),
    "PRECISIONS": ("posterforge.training.precision", "PRECISIONS"),
    "autocast": ("posterforge.training.precision", "autocast"),
    "check_precision": ("posterforge.training.precision", "check_precision"),
    "note_if_slow": ("posterforge.training.precision", "note_if_slow"),
    "training_precision": ("posterforge.training.precision", "training_precision"),
    "ImageFolderStream": ("posterforge.training.data", "ImageFolderStream"),
    "LabelledImageStream": ("posterforge.training.data", "LabelledImageStream"),
    "list_images": ("posterforge.training.data", "list_images"),
    "load_image": ("posterforge.training.data", "load_image"),
    "LabelledRecipe": ("posterforge.training.labelled", "LabelledRecipe"),
    "labelled_stream": ("posterforge.training.labelled", "labelled_stream"),
    "distributed": ("posterforge.training.distributed", ""),  # wrap_ddp, world_size, rank, ...
    # metrics while training: the held-out split and the translators' and generators' scores
    "split_held_out": ("posterforge.training.holdout", "split_held_out"),
    "load_held_out": ("posterforge.training.holdout", "load_held_out"),
    "translator_metrics": ("posterforge.evaluation.translation", "translator_metrics"),
    "generator_metrics": ("posterforge.evaluation.generation", "generator_metrics"),
    # tools for scripts and tests
    "atomic_write": ("posterforge.atomic", "atomic_write"),
    "Store": ("posterforge.store", "Store"),
    "export_run": ("posterforge.training.run", "export"),
    "discover": ("posterforge.plugins", "discover"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'posterforge.plugin' has no attribute {name!r}") from None
    value = import_module(module)
    value = getattr(value, attr) if attr else value
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# The same names for type checkers and editors (a test keeps this list equal to _EXPORTS).
if TYPE_CHECKING:
    from posterforge.atomic import atomic_write
    from posterforge.context import Context
    from posterforge.errors import PosterforgeError, WeightsError
    from posterforge.evaluation.features import FeatureExtractor
    from posterforge.evaluation.generation import generator_metrics
    from posterforge.evaluation.translation import translator_metrics
    from posterforge.family import (
        Family,
        Input,
        Option,
        labelled_inputs,
        labelled_options,
        recipe_from_dict,
    )
    from posterforge.hookspecs import hookimpl
    from posterforge.labels import LabelSet, labels_from_header
    from posterforge.models import (
        BuiltGenerator,
        Extractor,
        Generator,
        LatentGenerator,
        StyleMixer,
        Translator,
    )
    from posterforge.netconfig import NetConfig, between, flag, size_between
    from posterforge.plugins import discover
    from posterforge.presets import shipped
    from posterforge.records import Kind
    from posterforge.stabilize import SharedNorm, share_norms
    from posterforge.store import Store
    from posterforge.training import distributed
    from posterforge.training.augment import make_augment, make_diffaugment
    from posterforge.training.data import (
        ImageFolderStream,
        LabelledImageStream,
        list_images,
        load_image,
    )
    from posterforge.training.ema import ema_decay_at, label_grid, update_ema
    from posterforge.training.harness import BatchStream
    from posterforge.training.holdout import load_held_out, split_held_out
    from posterforge.training.labelled import LabelledRecipe, labelled_stream
    from posterforge.training.precision import (
        PRECISIONS,
        autocast,
        check_precision,
        note_if_slow,
        training_precision,
    )
    from posterforge.training.run import export as export_run
    from posterforge.training.schedules import Schedule
    from posterforge.training.task import TrainingTask, scalars
    from posterforge.weights import (
        NATIVE,
        Importer,
        Weights,
        WeightSource,
        check_config,
        check_shapes,
        make_header,
        shipped_source,
    )
    from posterforge.weights import ship as ship_weights
