"""A model family's training, as the plugin declares it: its inputs, recipes and factories.

The core's ``posterforge train translator|generator`` builds its options from the declared
:class:`Input` and :class:`Option` lists, merges the chosen recipe with ``--set`` overrides, and
calls the two factories: ``make_task`` (the nets, optimisers and step: all that a checkpoint
holds) and ``make_data`` (the batch stream). They are separate so that ``train export`` and
sampling never touch the training data. Registering a family imports no torch: the factories may
be ``"module:function"`` strings, imported only when a run starts.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from posterforge.errors import PosterforgeError, UnknownNameError
from posterforge.records import Kind
from posterforge.registry import resolve

if TYPE_CHECKING:
    from posterforge.context import Context
    from posterforge.training.harness import BatchStream
    from posterforge.training.task import TrainingTask
    from posterforge.weights import Weights

R = TypeVar("R")
KINDS: tuple[str, ...] = tuple(k.value for k in Kind)
INPUT_KINDS = ("folder", "file")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# the train commands' own options: an input or option of a family may not take these names
RESERVED = frozenset(
    {"name", "out", "preset", "arch", "init_from", "set", "max_steps", "seed", "device"}
    | {"overwrite", "resume", "help"}
)


@dataclass(frozen=True)
class Input:
    """A training input: ``--NAME PATH`` on the command line, ``inputs[NAME]`` for ``make_data``.

    ``kind`` is ``"folder"`` or ``"file"`` (checked before training starts); an input that is not
    ``required`` may be left out."""

    name: str
    kind: str
    help: str
    required: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Option:
    """A recipe key offered as its own option: ``--KEY VALUE`` sets ``[model] KEY`` (a string),
    e.g. ``Option("balance", "Genre balancing", ("cap", "resample", "none"))``; with ``switch``,
    ``--KEY`` alone sets it to true."""

    key: str
    help: str
    choices: tuple[str, ...] = ()
    switch: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


def labelled_inputs(noun: str = "label") -> tuple[Input, ...]:
    """The inputs of a family trained on labelled images read by
    :func:`posterforge.training.labelled.labelled_stream`: ``--data`` and an optional
    ``--labels`` file (``noun``: what one label is called, e.g. "genre")."""
    return (
        Input("data", "folder", f"Folder of images (or one sub-folder per {noun})."),
        Input(
            "labels",
            "file",
            f"CSV (path and {noun}s columns, several {noun}s separated by |) or JSONL.",
            required=False,
        ),
    )


BALANCE = Option("balance", "Label balancing (default: the recipe's)", ("cap", "resample", "none"))


def labelled_options(noun: str = "label") -> tuple[Option, ...]:
    """The options of a family whose recipe inherits
    :class:`posterforge.training.labelled.LabelledRecipe` (``noun``: what one label is called):
    balancing, how the labels file is read, a vocabulary from the data, and how much of the
    file must be usable."""
    from posterforge.jobs.labelled import reading_help

    return (
        BALANCE,
        *(Option(key, text) for key, text in reading_help().items()),  # eval's, too
        Option(
            "labels_from_data",
            f"Make the {noun} list from the data (every {noun} with an image, most common "
            "first) instead of the recipe's; it is stored in the model.",
            switch=True,
        ),
        Option(
            "min_usable",
            "Refuse to train when less than this share of the labels file's rows is usable "
            "(default 0.1; 0 trains on whatever is left).",
        ),
    )


# make_task(recipe, *, device, seed, init_from, ctx) -> TrainingTask
TaskFactory = Callable[..., "TrainingTask"]
# make_data(inputs, recipe, *, seed, rank, world_size, ctx) -> BatchStream
DataFactory = Callable[..., "BatchStream"]


def _takes_ctx(factory: Callable[..., Any]) -> bool:
    """Whether a factory takes the ``ctx`` keyword (or any keyword): families written before
    it was offered leave it out and are called without it."""
    import inspect

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: call it as it was called before
        return False
    return any(p.name == "ctx" or p.kind is p.VAR_KEYWORD for p in params)


def _call(factory: Callable[..., R], *args: Any, ctx: Context, **kwargs: Any) -> R:
    if _takes_ctx(factory):
        kwargs["ctx"] = ctx
    return factory(*args, **kwargs)


@dataclass(frozen=True)
class Family:
    """A trainable model family (see the module docstring and docs/hooks.md).

    ``recipes`` is a folder of ``NAME.toml`` files (``[model]`` for the family, ``[train]`` for
    the harness: ``max_steps``, ``checkpoint_every``, ...); ``default_recipe`` names the one a run
    uses without ``--preset``. ``make_task`` receives the ``[model]`` table (a dict), ``device``
    (a string), ``seed`` and ``init_from`` (loaded :class:`~posterforge.weights.Weights`, or
    None); a family that cannot start from weights raises ``ValueError`` saying so.
    ``make_data`` receives the inputs by name (``Path`` values), the same table, ``seed``,
    ``rank`` and ``world_size``. Both receive ``ctx``, the run's
    :class:`~posterforge.context.Context` (its plugins and store: e.g. for a labels preset),
    when they take that keyword (a factory without it is called without it). Either may raise
    ``ValueError`` with a message for the user.
    A stream may offer ``summary() -> dict`` (counts of what it uses): it is stored in the run
    and in the exported weights' provenance as ``data``. It may offer ``recipe_updates() ->
    dict``: ``[model]`` keys that the data decided (e.g. label names taken from the data); the
    run merges them into its recipe before it calls ``make_task`` and stores them, so resume and
    ``train export`` build the same task without the data. It may offer ``data_report() -> str
    | None``: every problem of its data, one a line, kept as ``RUN/data-report.txt`` (what the
    run prints stops at 20). ``make_data`` is called first.
    ``exports`` names the nets a run can store besides (or as) its model, each with the task's
    method that exports it, the default first: ``train export RUN --direction NAME`` (e.g.
    CycleGAN's ``{"a2b": "export", "b2a": "export_reverse"}``); empty: ``export`` alone.
    """

    name: str
    kind: Kind
    description: str
    inputs: tuple[Input, ...]
    make_task: TaskFactory | str
    make_data: DataFactory | str
    recipes: Traversable | Path | None = None
    default_recipe: str = "default"
    options: tuple[Option, ...] = ()
    aliases: tuple[str, ...] = ()
    example: str = ""  # the train command's arguments for the help, e.g. "--a A/ --b B/ ..."
    exports: Mapping[str, str] = field(default_factory=dict)  # name -> the task's method

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PosterforgeError(f"family {self.name!r}: kind must be one of {KINDS}")
        object.__setattr__(self, "kind", Kind(self.kind))  # a plain string given: its member
        seen: set[str] = set()
        for key, what in [(i.name, "input") for i in self.inputs] + [
            (o.key, "option") for o in self.options
        ]:
            if not _NAME.match(key) or key in RESERVED or key in seen:
                raise PosterforgeError(
                    f"family {self.name!r}: {what} name {key!r} is invalid, reserved or repeated"
                )
            seen.add(key)
        for i in self.inputs:
            if i.kind not in INPUT_KINDS:
                raise PosterforgeError(f"family {self.name!r}: input kind must be {INPUT_KINDS}")
        object.__setattr__(self, "exports", dict(self.exports))

    def export_method(self, name: str | None) -> str:
        """The task's method that exports ``name`` (None: the default, ``export``); an unknown
        name is refused with the ones this family offers."""
        if name is None:
            return next(iter(self.exports.values()), "export")
        if name not in self.exports:
            offered = ", ".join(self.exports) or "none: it exports one model"
            raise PosterforgeError(
                f"{self.name} has no export direction {name!r} (it offers: {offered})"
            )
        return self.exports[name]

    # -- recipes ---------------------------------------------------------------------------------
    def recipe_names(self) -> list[str]:
        if self.recipes is None or not self.recipes.is_dir():
            return []
        return sorted(p.name[:-5] for p in self.recipes.iterdir() if p.name.endswith(".toml"))

    def load_recipe(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        """The recipe ``name`` (default: ``default_recipe``) as ``{"model": {...}, "train":
        {...}}``; a family without recipe files gets empty tables."""
        name = name or self.default_recipe
        names = self.recipe_names()
        if name not in names:
            if not names and name == self.default_recipe:
                return {"model": {}, "train": {}}
            raise UnknownNameError(f"{self.name} recipe", name, names, show_all=True)
        assert self.recipes is not None
        text = (self.recipes / f"{name}.toml").read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise PosterforgeError(f"{self.name} recipe {name}.toml: {e}") from None
        return {"model": dict(data.get("model", {})), "train": dict(data.get("train", {}))}

    # -- factories -------------------------------------------------------------------------------
    def task(
        self,
        recipe: dict[str, Any],
        *,
        device: str = "cpu",
        seed: int = 0,
        init_from: Weights | None = None,
        ctx: Context,
    ) -> TrainingTask:
        """The task for ``recipe`` (``ctx``: the run's plugins and store)."""
        factory = resolve(self.make_task)
        return _call(factory, dict(recipe), device=device, seed=seed, init_from=init_from, ctx=ctx)

    def data(
        self,
        inputs: dict[str, Path],
        recipe: dict[str, Any],
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        ctx: Context,
    ) -> BatchStream:
        """The batch stream of ``inputs`` (``ctx``: the run's plugins and store)."""
        factory = resolve(self.make_data)
        shard = {"seed": seed, "rank": rank, "world_size": world_size}
        return _call(factory, dict(inputs), dict(recipe), ctx=ctx, **shard)



def recipe_from_dict(cls: type[R], recipe: dict[str, Any] | None, family: str) -> R:
    """A family's recipe dataclass from the ``[model]`` table; unknown keys (typos) are refused
    with the list of known ones, before any training starts."""
    recipe = dict(recipe or {})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(recipe) - known)
    if unknown:
        have = ", ".join(sorted(known))
        raise ValueError(f"unknown {family} recipe keys: {', '.join(unknown)} (known: {have})")
    return cls(**recipe)
