"""The training jobs: a new run (:class:`TrainJob`), the continuation of one (:class:`ResumeJob`)
and the export of a run's checkpoint (:class:`ExportJob`).

Each is checked once, when it is made, with the lines the CLI prints (they name the options as a
user types them): the family resolved, its inputs and declared options checked against what it
declares, its recipe merged with ``--set`` overrides, the weight name free, ``--init-from``
readable, the run folder new. :mod:`posterforge.training.run` runs them.
"""

from __future__ import annotations

import copy
import json
import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from posterforge.errors import PosterforgeError, UnknownNameError
from posterforge.jobs.common import about, at_least, check_device, device_field, one_of
from posterforge.jobs.labelled import FIELDS as READING_FIELDS
from posterforge.jobs.labelled import LabelsReading
from posterforge.records import Kind
from posterforge.training.checkpoints import list_checkpoints

if TYPE_CHECKING:
    from posterforge.context import Context
    from posterforge.family import Family
    from posterforge.plugins import PluginHost

log = logging.getLogger(__name__)

READING_KEYS = frozenset(f.name for f in READING_FIELDS)  # the labels file's, shared with eval
HARNESS_KEYS = (
    "max_steps",
    "checkpoint_every",
    "sample_every",
    "log_every",
    "keep_checkpoints",
    "eval_every",
    "best_by",
)
Recipe = dict[str, dict[str, Any]]  # {"model": {...}, "train": {...}}


def parse_overrides(items: Sequence[str]) -> Recipe:
    """``--set`` items: ``KEY=VALUE`` (a model key) or ``train.KEY=VALUE``; values are TOML
    (``lr=1e-4``, ``loss="wgan-gp"``, ``cycle_weight={start=20, end=10, decay_steps=1000}``),
    and a bare word is taken as a string."""
    out: Recipe = {"train": {}, "model": {}}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise PosterforgeError(f"invalid --set {item!r}: use KEY=VALUE")
        section, _, name = key.strip().rpartition(".")
        section = section or "model"
        if section not in out:
            raise PosterforgeError(f"invalid --set {item!r}: the section is train or model")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[section][name] = value
    return out


def family_for(kind: str, arch: str | None = None, host: PluginHost | None = None) -> Family:
    """The family that ``train KIND --arch ARCH`` trains (without ``--arch``: the first of that
    kind by name, first-party families before others); ``host``: the default context's."""
    if host is None:
        from posterforge.context import default_context

        host = default_context().host
    entries = [e for e in host.families if e.item.kind == kind]
    if arch is not None:
        if arch not in host.families or host.families.get(arch).kind != kind:
            raise UnknownNameError(f"{kind} family", arch, [e.name for e in entries])
        return host.families.get(arch)
    if not entries:
        raise PosterforgeError(f"no plugin offers {kind} training")
    builtin = host.builtin_plugins()
    return min(entries, key=lambda e: (e.plugin not in builtin, e.name)).item


def load_recipe(family: Family, preset: str | None = None, overrides: Sequence[str] = ()) -> Recipe:
    """The family's recipe ``preset`` (default: its default recipe) with ``--set`` overrides."""
    merged = family.load_recipe(preset)
    for section, values in parse_overrides(overrides).items():
        merged[section].update(values)
    return merged


def read_request(run_dir: Path) -> dict[str, Any]:
    """What a run was asked (its ``request.json``)."""
    try:
        request = json.loads((Path(run_dir) / "request.json").read_text())
        if not isinstance(request, dict) or "arch" not in request:
            raise ValueError("not a posterforge run request")
    except (OSError, ValueError) as e:
        bad = f"{run_dir}: not a training run (no readable request.json: {e})"
        raise PosterforgeError(bad) from None
    return request


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


class TrainOptions(TypedDict, total=False):
    """The keywords of :meth:`TrainJob.create` (and so of :func:`posterforge.api.train` and
    :func:`posterforge.training.run.train`) besides kind, inputs, name and run folder."""

    arch: str | None
    preset: str | None
    overrides: Sequence[str]
    options: Mapping[str, str | bool | None] | None
    init_from: str | None
    max_steps: int | None
    seed: int
    device: str
    overwrite: bool


@dataclass(frozen=True)
class TrainJob:
    """A new training run of ``family``, stored as ``name`` when it ends. ``inputs``: the
    family's inputs by name; ``options``: its declared recipe options (``{"balance": "cap"}``);
    ``preset``: one of its recipes (None: its default); ``overrides``: ``--set`` items.
    ``recipe`` is the merged result, made once here."""

    family: Family = about("The model family (the API's kind and arch choose it).")
    inputs: Mapping[str, Path] = about('The family\'s inputs by name: {"a": DIR, "b": DIR}.')
    name: str = about("The name to store the trained model under.")
    run_dir: Path = about("Run folder: checkpoints, samples, logs, request.json.")
    preset: str | None = about("The family's training recipe (default: its own).", None)
    overrides: tuple[str, ...] = about(
        "Recipe overrides KEY=VALUE (TOML values); train.KEY for the loop.", ()
    )
    options: Mapping[str, str | bool] = field(
        default_factory=dict, metadata={"help": "The family's declared recipe options."}
    )
    init_from: str | None = about("Start from a model's weights (a name or file).", None)
    max_steps: int | None = about("Steps to train (default: the recipe's).", None)
    seed: int = about("Same seed, same run.", 0)
    device: str = device_field()
    overwrite: bool = about("Replace stored weights of that name.", False)
    recipe: Recipe = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_device(self.device)
        at_least(self.max_steps, 0, "--max-steps")
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        object.__setattr__(self, "inputs", _checked_inputs(self.family, self.inputs))
        object.__setattr__(self, "options", _checked_options(self.family, self.options))
        object.__setattr__(self, "recipe", self._merged_recipe())
        checkpoints = self.run_dir / "checkpoints"
        if checkpoints.is_dir() and any(checkpoints.iterdir()):
            raise PosterforgeError(
                f"{self.run_dir} holds a run already: resume it with --resume {self.run_dir}"
            )

    @classmethod
    def create(
        cls,
        ctx: Context,
        kind: Kind | str,
        inputs: Mapping[str, str | Path | None],
        name: str | None,
        run_dir: str | Path | None,
        *,
        arch: str | None = None,
        preset: str | None = None,
        overrides: Sequence[str] = (),
        options: Mapping[str, str | bool | None] | None = None,
        init_from: str | None = None,
        max_steps: int | None = None,
        seed: int = 0,
        device: str = "auto",
        overwrite: bool = False,
    ) -> TrainJob:
        """The job as a user asks it: the family resolved in ``ctx`` from ``kind`` and ``arch``,
        what is missing or not taken said in one line, the name checked against the store."""
        from posterforge.catalog import check_free_name

        kind = Kind(one_of(str(kind), [str(k) for k in Kind], "kind"))
        family = family_for(kind, arch, ctx.host)
        given = {k: Path(v) for k, v in inputs.items() if v is not None}
        extra = [_flag(k) for k in given if k not in {i.name for i in family.inputs}]
        if extra:
            raise PosterforgeError(f"{family.name} does not take {', '.join(extra)}")
        missing = [i.flag for i in family.inputs if i.required and i.name not in given]
        missing += [f"--{k}" for k, v in {"name": name, "out": run_dir}.items() if v is None]
        if missing:
            raise PosterforgeError(f"missing {', '.join(missing)} (or pass --resume RUN_DIR)")
        assert name is not None and run_dir is not None
        check_free_name(name, ctx.host, ctx.store, overwrite=overwrite)
        check_store(ctx)  # the model goes there at the end: a read-only store is said now
        if init_from is not None:  # a bad --init-from fails now, not after the set-up
            _check_init_against_set(init_from, _check_init(init_from, kind, ctx), overrides)
        chosen = {k: v for k, v in (options or {}).items() if v is not None and v is not False}
        return cls(
            family, given, name, Path(run_dir), preset, tuple(overrides), chosen,
            init_from, max_steps, seed, device, overwrite,
        )  # fmt: skip

    def _merged_recipe(self) -> Recipe:
        recipe = load_recipe(self.family, self.preset, self.overrides)
        recipe["model"].update(self.options)
        if self.max_steps is not None:
            recipe["train"]["max_steps"] = self.max_steps
        _check_max_steps(recipe)
        return recipe

    def request(self) -> dict[str, Any]:
        """What the run folder's ``request.json`` keeps: all that resume and export need."""
        return {
            "kind": str(self.family.kind),
            "arch": self.family.name,
            "name": self.name,
            "preset": self.preset or self.family.default_recipe,
            "seed": self.seed,
            "data": {k: str(p.resolve()) for k, p in self.inputs.items()},
            "recipe": copy.deepcopy(self.recipe),  # the run adds what the data decides
            "init_from": self.init_from,
        }


def _checked_inputs(family: Family, inputs: Mapping[str, Path]) -> dict[str, Path]:
    """The given inputs, checked against what the family declares (before any work)."""
    declared = {i.name: i for i in family.inputs}
    extra = sorted(k for k in inputs if k not in declared)
    if extra:
        raise PosterforgeError(f"{family.name} does not take {', '.join(map(_flag, extra))}")
    out: dict[str, Path] = {}
    for spec in family.inputs:
        if spec.name not in inputs:
            if spec.required:
                raise PosterforgeError(f"missing {spec.flag} (or pass --resume RUN_DIR)")
            continue
        path = Path(inputs[spec.name])
        if not (path.is_dir() if spec.kind == "folder" else path.is_file()):
            what = "folder not found" if spec.kind == "folder" else "file not found"
            raise PosterforgeError(f"{spec.flag} {path}: {what}")
        out[spec.name] = path
    return out


def _checked_options(family: Family, options: Mapping[str, str | bool]) -> dict[str, str | bool]:
    """The family's declared recipe options: known keys, and one of the choices where it has
    them (a switch is true or left out)."""
    declared = {o.key: o for o in family.options}
    for key, value in options.items():
        if key not in declared:
            raise PosterforgeError(f"{family.name} has no option {_flag(key)}")
        spec = declared[key]
        if spec.choices and value not in spec.choices:
            raise PosterforgeError(
                f"{spec.flag} must be one of {', '.join(spec.choices)}, not {value!r}"
            )
    reading = {k: v for k, v in options.items() if k in READING_KEYS and isinstance(v, str)}
    if reading:  # a bad --encoding or --path-template: one line now, as eval says it
        LabelsReading(**reading)
    return dict(options)


def _check_max_steps(recipe: Recipe) -> None:
    if "max_steps" not in recipe["train"]:
        raise PosterforgeError("the recipe sets no train.max_steps: pass --max-steps")


def check_store(ctx: Context) -> None:
    """One line, before any training, when the weight store cannot be written."""
    from posterforge.atomic import check_writable

    try:
        check_writable(ctx.store.weights_dir)
    except PosterforgeError as e:
        raise PosterforgeError(f"{e} (the weight store: set POSTERFORGE_HOME)") from None


def _check_init(spec: str, kind: str, ctx: Context) -> dict[str, Any]:
    """``--init-from`` names weights of the kind trained (read from the header alone); returns
    the header."""
    from posterforge.catalog import resolve_weights
    from posterforge.weights import read_header

    header = read_header(resolve_weights(spec, ctx.host, ctx.store))
    held = header.get("kind")
    if held != kind:
        raise PosterforgeError(f"--init-from {spec}: holds a {held}, not a {kind}")
    return header


def _check_init_against_set(spec: str, header: Mapping[str, Any], overrides: Sequence[str]) -> None:
    """The init weights fix the architecture (their config wins over the recipe's): a ``--set``
    of one of its keys to another value is not used, and one line says so, naming both values
    (a run that asked for a narrow net must not train a wide one without a word)."""
    config = header.get("config")
    if not isinstance(config, Mapping):
        return
    for key, value in parse_overrides(overrides)["model"].items():
        if key in config and json.dumps(value) != json.dumps(config[key]):
            log.warning(
                "posterforge: note: --set %s=%s is not used: --init-from %s fixes %s=%s "
                "(its weights' shape); leave out --init-from to train that shape",
                key, json.dumps(value), spec, key, json.dumps(config[key]),
            )  # fmt: skip


@dataclass(frozen=True)
class ResumeJob:
    """Continue the run in ``run_dir`` exactly where its last checkpoint left it; only
    ``max_steps`` (to extend it) and ``device`` may change. ``request`` is read here, once."""

    run_dir: Path = about("A run folder made by train.")
    max_steps: int | None = about("Train on to this many steps (default: the run's).", None)
    device: str = device_field()
    request: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_device(self.device)
        at_least(self.max_steps, 0, "--max-steps")
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        request = read_request(self.run_dir)
        if self.max_steps is not None:
            request["recipe"]["train"]["max_steps"] = self.max_steps
        _check_max_steps(request["recipe"])
        object.__setattr__(self, "request", request)


@dataclass(frozen=True)
class ExportJob:
    """Store the model of a run's checkpoint (the newest, or ``step``) under ``name``; needs only
    the run folder. ``direction``: which of the nets the family exports (its ``exports``, e.g.
    ``b2a``; None: its default model). ``request`` and ``checkpoint`` are found here, once."""

    run_dir: Path = about("A run folder made by train.")
    name: str = about("Name to store the model under.")
    step: int | None = about("Checkpoint step (default: the newest).", None)
    overwrite: bool = about("Replace stored weights of that name.", False)
    direction: str | None = about(
        "Another net the run trained, where its family exports several (b2a: a translator "
        "trained both ways, back from B to A; default: its model).",
        None,
    )
    best: bool = about("The run's best checkpoint by its train.best_by metric (not --step).", False)
    request: dict[str, Any] = field(init=False, repr=False, compare=False)
    checkpoint: Path = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        object.__setattr__(self, "request", read_request(self.run_dir))
        if self.best:
            object.__setattr__(self, "checkpoint", _best_checkpoint(self.run_dir, self.step))
            return
        found = dict(list_checkpoints(self.run_dir))
        if not found or (self.step is not None and self.step not in found):
            have = ", ".join(map(str, sorted(found))) or "none"
            bad = f"{self.run_dir}: no checkpoint at step {self.step} (have: {have})"
            raise PosterforgeError(bad)
        step = self.step if self.step is not None else max(found)
        object.__setattr__(self, "checkpoint", found[step])

    @classmethod
    def create(
        cls,
        ctx: Context,
        run_dir: str | Path,
        name: str,
        *,
        step: int | None = None,
        overwrite: bool = False,
        direction: str | None = None,
        best: bool = False,
    ) -> ExportJob:
        """The job, with ``name`` checked against the plugins' and the store's names and
        ``direction`` against what the run's family exports, first."""
        from posterforge.catalog import check_free_name

        check_free_name(name, ctx.host, ctx.store, overwrite=overwrite)
        check_store(ctx)
        job = cls(Path(run_dir), name, step, overwrite, direction, best)
        family_for(job.request["kind"], job.request["arch"], ctx.host).export_method(direction)
        return job


def _best_checkpoint(run_dir: Path, step: int | None) -> Path:
    """``RUN/checkpoints/best.pt``, or one line saying why there is none."""
    from posterforge.training.monitor import best_path

    if step is not None:
        raise PosterforgeError("--best and --step each choose a checkpoint: give one of them")
    path = best_path(run_dir)
    if not path.is_file():
        raise PosterforgeError(
            f"{run_dir}: no best checkpoint (the run tracks one with train.best_by and "
            "train.eval_every, from its first metric pass on)"
        )
    return path
