"""The plugin contract: every hook a posterforge plugin may implement.

A plugin is a module named by an entry point in the ``posterforge`` group. It implements any of
these hooks with ``@hookimpl`` (an implementation may leave out the argument it does not use, as
pluggy allows). A plugin imports everything it uses of posterforge from
:mod:`posterforge.plugin` (``from posterforge.plugin import Translator, hookimpl``): the types
named below, the weight format's helpers and the training building blocks; the core's other
modules may move. Hooks register *classes and descriptions*, never loaded models:
listing styles or printing ``--help`` must not import torch or read weights. Every registration
is recorded against its plugin: a name that another plugin took already is refused and shown as
an error of the later plugin in ``posterforge plugins`` (first-party plugins load first).

The docstrings below are the hook reference in docs/ (a test checks that each hook is documented
there and exercised by the test suite).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from pathlib import Path

    import typer

    from posterforge.family import Family
    from posterforge.models import Extractor, Generator, Translator
    from posterforge.weights import Importer, WeightSource

PROJECT = "posterforge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_translators(register: Callable[[type[Translator]], None]) -> None:
    """Register translator classes (image in, image out), e.g. a CycleGAN generator family.

    Call ``register(cls)`` once per class. ``cls`` subclasses :class:`posterforge.plugin.Translator`
    and sets, as class attributes:

    - ``name`` (the architecture name stored in weight files as ``arch``) and optional
      ``aliases``;
    - ``description``; ``needs_weights`` (False: usable as a style without any weight file);
    - ``multiple`` and ``min_size``: the engine pads each batch by reflection to a multiple of
      ``multiple`` and at least ``min_size`` on each side, and crops the result back.

    ``cls.build(weights)`` returns the torch module, on the CPU in fp32 (``weights`` is a loaded
    :class:`posterforge.plugin.Weights`, or None when ``needs_weights`` is False); it is called
    only when a command runs. Before it, ``cls.check(header, shapes)`` (optional) sees the weight
    file's header and its tensors' shapes, nothing loaded, and raises ``ValueError`` for a file
    that cannot be this model (``posterforge.plugin.check_config`` checks types and ranges,
    ``check_shapes`` compares the config's network, built on torch's meta device, with the
    tensors), so that a hostile file is one line and never allocates more than it holds.
    The module maps float ``(B, 3, H, W)`` in ``[0, 1]`` to the same
    shape and range and does its own normalisation. It may define ``optimize_for(device, dtype)
    -> nn.Module``: the engine calls it once after moving the module to ``device`` (``dtype`` is
    the autocast dtype, None for fp32) and runs what it returns, e.g. faster kernels for a CPU.
    """


@hookspec
def register_generators(register: Callable[[type[Generator]], None]) -> None:
    """Register generator classes (noise and a condition in, images out).

    Call ``register(cls)`` once per class. ``cls`` subclasses :class:`posterforge.plugin.Generator`
    (``name``, ``aliases``, ``description``, ``needs_weights`` and ``check`` as for translators),
    and
    ``cls.build(weights)`` returns a module that satisfies
    :class:`posterforge.plugin.BuiltGenerator`: ``z_dim``, ``image_size`` (W, H),
    ``label_names`` (None for an unconditional generator), ``conditions(spec)`` (a user's
    condition, such as ``horror+comedy``, as a ``(C,)`` tensor), ``caption(spec)`` (its canonical
    spelling for file names) and ``sample(z, conditions)`` giving ``(B, 3, H, W)`` in ``[0, 1]``.
    Label names come from the weight file's ``labels``, so conditions map by name.
    :class:`posterforge.plugin.LabelSet` parses names, aliases and mixes for any conditional
    family. Optional: ``truncation = "model"`` to receive ``sample(z, c, truncation=PSI)``
    instead of the core's noise resampling.
    """


@hookspec
def register_families(register: Callable[[Family], None]) -> None:
    """Offer a model family's training to ``posterforge train translator|generator --arch NAME``.

    Call ``register(Family(...))`` (:class:`posterforge.plugin.Family`) with:

    - ``name``, ``kind`` (``Kind.TRANSLATOR`` or ``Kind.GENERATOR``), ``description``,
      ``aliases``,
      ``example`` (arguments of a typical train command, shown in its help);
    - ``inputs``: :class:`posterforge.plugin.Input` ``(name, kind, help, required)``, each one a
      ``--NAME PATH`` option of the train command (kind ``"folder"`` or ``"file"``, checked before
      training starts);
    - ``options``: :class:`posterforge.plugin.Option` ``(key, help, choices, switch)``, recipe
      keys offered as their own ``--KEY VALUE`` option (``--KEY`` alone with ``switch``);
      ``labelled_inputs(noun)`` and ``labelled_options(noun)`` are those of a family trained on
      labelled images through :class:`posterforge.plugin.LabelledRecipe`;
    - ``recipes``: a folder of ``NAME.toml`` recipes (``[model]`` for the family, ``[train]`` for
      the harness: ``max_steps``, ``checkpoint_every``, ``sample_every``, ``log_every``,
      ``keep_checkpoints``), and ``default_recipe`` (``"default"``);
    - ``make_task(recipe, *, device, seed, init_from, ctx)``: a
      :class:`posterforge.plugin.TrainingTask` from the merged ``[model]`` table
      (``init_from``: loaded weights from ``--init-from``, or None; raise ``ValueError`` when the
      family cannot start from them; ``ctx``: the run's :class:`posterforge.plugin.Context`, its
      plugins and store, e.g. for ``LabelledRecipe.vocabulary(ctx)``; a factory that does not
      take ``ctx`` is called without it);
    - ``make_data(inputs, recipe, *, seed, rank, world_size, ctx)``: the batch stream (``__next__``,
      ``state_dict``, ``load_state_dict``; optional ``close``, ``summary`` and
      ``recipe_updates``: recipe keys the data decided, stored before ``make_task`` is called;
      ``data_report() -> str | None``: every problem of the data, kept as RUN/data-report.txt);
    - ``exports``: the nets ``train export RUN --direction NAME`` can store, each with the task's
      method that exports it, the default first (CycleGAN: ``{"a2b": "export", "b2a":
      "export_reverse"}``); empty: the task's ``export`` alone.

    The factories may be ``"module:function"`` strings, imported only when a run starts, so the
    plugin module stays free of torch. ``train export`` and resume build the task without the data.
    The generic harness owns the loop, checkpoints, exact resume, logs and sample grids.
    """


@hookspec
def register_presets(register: Callable[[Traversable | Path], None]) -> None:
    """Ship presets: ``register(folder)`` with a folder (e.g.
    ``importlib.resources.files(__name__) / "presets"``) that holds ``styles/NAME.toml`` (a style
    for ``translate --style NAME``: ``description``, ``translator``, ``weights``, ``licence``,
    ``credit``, ``how_to_get``) and/or ``labels/NAME.toml`` (a label vocabulary for conditional
    families: ``names`` in slot order, ``noun`` such as ``"genre"``, and ``[aliases]``).
    """


@hookspec
def register_importers(register: Callable[[Importer], None]) -> None:
    """Register converters from foreign checkpoints (``.pth`` state dicts) into our weight format.

    Call ``register(Importer(name=..., description=..., detect=..., convert=...))``.
    ``detect(state_dict)`` says whether the tensors look like this format;
    ``convert(state_dict)`` returns ``(tensors, header_fields)`` through an explicit key mapping
    (``header_fields``: ``kind``, ``arch``, ``config``, ...). The core loads the file with
    ``torch.load(weights_only=True)`` before either is called, so an importer never sees pickled
    code.
    """


@hookspec
def register_weight_sources(register: Callable[[WeightSource], None]) -> None:
    """Declare weights that can be installed into the store without a download.

    Call ``register(WeightSource(name=..., description=..., locate=..., importer=...))`` with
    ``locate()`` finding the source file (e.g. a checkpoint shipped inside an installed package,
    or ``None`` when absent), the importer that converts it (or ``posterforge.plugin.NATIVE``
    for a file already in our format), and optionally ``kind`` (``Kind.TRANSLATOR`` or
    ``Kind.GENERATOR``), ``sha256``, ``licence``, ``provenance`` and ``how_to_get``. The store
    imports it once, on first use, and checks the sha256.
    """


@hookspec
def register_feature_extractors(register: Callable[[Extractor], None]) -> None:
    """Offer feature extractors to ``posterforge eval`` (FID, KID and precision/recall are
    measured on their features).

    Call ``register(Extractor(name=..., description=..., load=...))``
    (:class:`posterforge.plugin.Extractor`): ``load()``, or a ``"module:function"`` string
    imported only when an evaluation runs, returns a
    :class:`posterforge.plugin.FeatureExtractor` with its weights loaded, an
    ``nn.Module`` mapping ``(B, 3, H, W)`` in ``[0, 1]`` (or uint8) to ``(B, num_features)``
    float32 that sets ``name``, ``description`` and ``num_features`` and resizes its input
    itself. Without ``--inception-weights`` an evaluation uses the extractor registered first
    (first-party plugins load first); its name is printed next to every number.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add CLI commands to the ``posterforge`` Typer app, e.g. ``@app.command()``.

    Keep heavy imports inside the command functions: this hook runs before ``--help`` is shown.
    """


HOOK_NAMES: tuple[str, ...] = (
    "register_translators",
    "register_generators",
    "register_families",
    "register_presets",
    "register_importers",
    "register_weight_sources",
    "register_feature_extractors",
    "register_commands",
)


def render_reference() -> str:
    """The Markdown hook reference in docs/hooks.md, made from the docstrings above."""
    import inspect

    parts = [
        "# Hook reference\n",
        "<!-- Generated from posterforge/hookspecs.py by posterforge.hookspecs.render_reference();"
        " a test fails when this file is stale. -->\n",
        inspect.cleandoc(__doc__ or "") + "\n",
        "Implement a hook with `@hookimpl` (`from posterforge.plugin import hookimpl`) on a"
        " function of the same name in the module your entry point names.\n",
    ]
    for name in HOOK_NAMES:
        fn = globals()[name]
        params = ", ".join(f"{k}: {v}" for k, v in fn.__annotations__.items() if k != "return")
        parts.append(f"## {name}\n\n```python\n@hookimpl\ndef {name}({params}) -> None: ...\n```\n")
        parts.append(inspect.cleandoc(fn.__doc__ or "") + "\n")
    return "\n".join(parts)
