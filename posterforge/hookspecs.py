"""The plugin contract: every hook a posterforge plugin may implement.

A plugin is a module named by an entry point in the ``posterforge`` group. It implements any of
these hooks with ``@posterforge.hookimpl``. Hooks register *classes and descriptions*, never loaded
models: listing styles or printing ``--help`` must not import torch or read weights.

The docstrings below are the hook reference in docs/ (a test checks that each hook is documented
there and exercised by the test suite).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from posterforge.models import Generator, Translator
    from posterforge.training.spec import TrainerSpec
    from posterforge.weights import Importer, WeightSource

PROJECT = "posterforge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_translators(register: Callable[[type[Translator]], None]) -> None:
    """Register translator classes (image in, image out), e.g. a CycleGAN generator family.

    Call ``register(cls)`` once per class. ``cls`` subclasses :class:`posterforge.models.Translator`
    and declares ``name``, optional ``aliases``, ``description``, ``needs_weights`` and ``multiple``
    (the size multiple its network needs; the engine pads to it). ``cls.build(weights)`` makes the
    torch module; it is called only when a command runs.
    """


@hookspec
def register_generators(register: Callable[[type[Generator]], None]) -> None:
    """Register generator classes (noise and labels in, images out), e.g. the genre cGAN.

    Call ``register(cls)`` once per class. ``cls`` subclasses :class:`posterforge.models.Generator`;
    the built module samples ``(B, 3, H, W)`` images in ``[0, 1]`` from ``z`` and label vectors, and
    its label names (genres) come from the weight file's config so that labels map by name.
    """


@hookspec
def register_importers(register: Callable[[Importer], None]) -> None:
    """Register converters from foreign checkpoints (``.pth`` state dicts) into our weight format.

    Call ``register(Importer(name=..., detect=..., convert=...))``. ``detect(state_dict)`` says
    whether the tensors look like this format; ``convert(state_dict)`` returns ``(tensors, config)``
    through an explicit key mapping. The core loads the file with ``torch.load(weights_only=True)``
    before either is called, so an importer never sees pickled code.
    """


@hookspec
def register_weight_sources(register: Callable[[WeightSource], None]) -> None:
    """Declare weights that can be installed into the store without a download.

    Call ``register(WeightSource(...))`` with the style or model name, a function that finds the
    source file (e.g. a checkpoint shipped inside an installed package, or ``None`` when absent),
    the importer that converts it, and its sha256. The store imports it once, on first use.
    """


@hookspec
def register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    """Offer a model family's training to ``posterforge train translator|generator``.

    Call ``register(TrainerSpec(name=..., kind="translator", description=..., build=...))``,
    where ``build`` is a function or a ``"module:function"`` string (imported only when training
    starts, so the plugin module stays free of torch). ``build(request)`` receives a
    :class:`posterforge.training.spec.TrainRequest` (data folders, merged recipe, device, seed,
    DDP rank, initial weights) and returns ``(task, batches)``: a
    :class:`posterforge.training.task.TrainingTask` and a resumable batch stream for the generic
    harness, which owns the loop, checkpoints, exact resume, logs and sample grids.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add CLI commands to the ``posterforge`` Typer app, e.g. ``@app.command()``.

    Keep heavy imports inside the command functions: this hook runs before ``--help`` is shown.
    """


HOOK_NAMES: tuple[str, ...] = (
    "register_translators",
    "register_generators",
    "register_importers",
    "register_weight_sources",
    "register_trainers",
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
        "Implement a hook with `@posterforge.hookimpl` on a function of the same name in the module"
        " your entry point names.\n",
    ]
    for name in HOOK_NAMES:
        fn = globals()[name]
        params = ", ".join(f"{k}: {v}" for k, v in fn.__annotations__.items() if k != "return")
        parts.append(f"## {name}\n\n```python\n@hookimpl\ndef {name}({params}) -> None: ...\n```\n")
        parts.append(inspect.cleandoc(fn.__doc__ or "") + "\n")
    return "\n".join(parts)
