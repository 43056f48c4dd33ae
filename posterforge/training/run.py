"""``train`` as a Python API: pick the family, merge its recipe, build its task and data, run the
harness, and put the result into the weight store under a name (so ``translate --style NAME`` or
``generate --model NAME`` works at once).

A run folder also holds ``request.json`` (what was asked: family, inputs, merged recipe, name,
``--init-from``, and the data summary), so that ``resume(run_dir)`` needs nothing else, also after
``kill -9``, and ``export(run_dir)`` needs neither the data nor the command line.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import write_text_atomic
from posterforge.errors import PosterforgeError, UnknownNameError
from posterforge.store import Store

if TYPE_CHECKING:
    from posterforge.family import Family
    from posterforge.weights import Weights

log = logging.getLogger(__name__)

HARNESS_KEYS = ("max_steps", "checkpoint_every", "sample_every", "log_every", "keep_checkpoints")


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set`` items: ``KEY=VALUE`` (a model key) or ``train.KEY=VALUE``; values are TOML
    (``lr=1e-4``, ``loss="wgan-gp"``, ``cycle_weight={start=20, end=10, decay_steps=1000}``),
    and a bare word is taken as a string."""
    out: dict[str, dict[str, Any]] = {"train": {}, "model": {}}
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


def family_for(kind: str, arch: str | None = None) -> Family:
    """The family that ``train KIND --arch ARCH`` trains (without ``--arch``: the first of that
    kind by name, first-party families before others)."""
    from posterforge.plugins import get_host

    host = get_host()
    entries = [e for e in host.families if e.item.kind == kind]
    if arch is not None:
        if arch not in host.families or host.families.get(arch).kind != kind:
            raise UnknownNameError(f"{kind} family", arch, [e.name for e in entries])
        return host.families.get(arch)
    if not entries:
        raise PosterforgeError(f"no plugin offers {kind} training")
    builtin = host.builtin_plugins()
    return min(entries, key=lambda e: (e.plugin not in builtin, e.name)).item


def load_recipe(
    family: Family, preset: str | None = None, overrides: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """The family's recipe ``preset`` (default: its default recipe) with ``--set`` overrides."""
    merged = family.load_recipe(preset)
    for section, values in parse_overrides(overrides).items():
        merged[section].update(values)
    return merged


def check_inputs(family: Family, inputs: Mapping[str, str | Path | None]) -> dict[str, Path]:
    """The given inputs as paths, checked against what the family declares (before any work)."""
    declared = {i.name: i for i in family.inputs}
    extra = sorted(k for k, v in inputs.items() if v is not None and k not in declared)
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise PosterforgeError(f"{family.name} does not take {flags}")
    out: dict[str, Path] = {}
    for spec in family.inputs:
        value = inputs.get(spec.name)
        if value is None:
            if spec.required:
                need = " ".join(f"{i.flag} {i.kind.upper()}" for i in family.inputs if i.required)
                raise PosterforgeError(f"{family.name} needs {spec.flag} (usage: {need})")
            continue
        path = Path(value)
        ok = path.is_dir() if spec.kind == "folder" else path.is_file()
        if not ok:
            what = "folder not found" if spec.kind == "folder" else "file not found"
            raise PosterforgeError(f"{spec.flag} {path}: {what}")
        out[spec.name] = path
    return out


def train(
    kind: str,
    inputs: Mapping[str, str | Path | None],
    name: str,
    run_dir: str | Path,
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
    store: Store | None = None,
) -> Path | None:
    """Train a new model of ``kind`` ("translator" or "generator") and store it as ``name``.

    ``inputs`` names the family's inputs (``{"a": DIR, "b": DIR}`` for CycleGAN, ``{"data": DIR,
    "labels": FILE}`` for the genre cGAN); ``options`` its declared recipe options
    (``{"balance": "cap"}``); ``preset`` one of its recipes (default: its default recipe).

    Returns the stored weight file (``None`` on DDP ranks other than 0). Configuration errors
    (unknown family or recipe, name taken, missing input) raise before any training starts.
    """
    from posterforge.catalog import check_free_name
    from posterforge.plugins import get_host

    store = store or Store()
    check_free_name(name, get_host(), store, overwrite=overwrite)
    family = family_for(kind, arch)
    paths = check_inputs(family, inputs)
    recipe = load_recipe(family, preset, overrides)
    offered = {o.key for o in family.options}
    for key, value in (options or {}).items():
        if value is None:
            continue
        if key not in offered:
            raise PosterforgeError(f"{family.name} has no option --{key.replace('_', '-')}")
        recipe["model"][key] = value
    if max_steps is not None:
        recipe["train"]["max_steps"] = max_steps
    if init_from is not None:
        _load_init(init_from, kind, store)  # a bad --init-from fails now, not after the set-up
    run_dir = Path(run_dir)
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise PosterforgeError(f"{run_dir} holds a run already: resume it with --resume {run_dir}")
    request = {
        "kind": kind,
        "arch": family.name,
        "name": name,
        "preset": preset or family.default_recipe,
        "seed": seed,
        "data": {k: str(p.resolve()) for k, p in paths.items()},
        "recipe": recipe,
        "init_from": init_from,
    }
    return _run(request, run_dir, device, store, resume=False)


def resume(
    run_dir: str | Path,
    *,
    max_steps: int | None = None,
    device: str = "auto",
    store: Store | None = None,
) -> Path | None:
    """Continue the run in ``run_dir`` exactly where its last checkpoint left it (a run killed
    before its first checkpoint starts again as it first did, ``--init-from`` included)."""
    run_dir = Path(run_dir)
    request = read_request(run_dir)
    if max_steps is not None:
        request["recipe"]["train"]["max_steps"] = max_steps
    return _run(request, run_dir, device, store or Store(), resume=True)


def read_request(run_dir: Path) -> dict[str, Any]:
    try:
        request = json.loads((run_dir / "request.json").read_text())
        if not isinstance(request, dict) or "arch" not in request:
            raise ValueError("not a posterforge run request")
    except (OSError, ValueError) as e:
        bad = f"{run_dir}: not a training run (no readable request.json: {e})"
        raise PosterforgeError(bad) from None
    return request


def _load_init(spec: str, kind: str, store: Store) -> Weights:
    from posterforge.catalog import resolve_weights
    from posterforge.plugins import get_host
    from posterforge.weights import load_weights

    weights = load_weights(resolve_weights(spec, get_host(), store))
    if weights.header.get("kind") != kind:
        raise PosterforgeError(
            f"--init-from {spec}: holds a {weights.header.get('kind')}, not a {kind}"
        )
    return weights


def _task(request: dict[str, Any], device: str, store: Store) -> Any:
    """The family's task for a saved or new request (no data needed)."""
    family = family_for(request["kind"], request["arch"])
    init = request.get("init_from")
    init_weights = _load_init(init, request["kind"], store) if init else None
    try:
        return family.task(
            request["recipe"]["model"],
            device=device,
            seed=int(request["seed"]),
            init_from=init_weights,
        )
    except ValueError as e:  # the family refuses the recipe or the initial weights
        raise PosterforgeError(f"{family.name}: {e}") from None


def _data(request: dict[str, Any], rank: int, world_size: int) -> Any:
    family = family_for(request["kind"], request["arch"])
    try:
        return family.data(
            {k: Path(v) for k, v in request["data"].items()},
            request["recipe"]["model"],
            seed=int(request["seed"]),
            rank=rank,
            world_size=world_size,
        )
    except ValueError as e:
        raise PosterforgeError(f"{family.name}: {e}") from None


def _header(header: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """What the run adds to the family's exported header: the data summary, ``--init-from``."""
    provenance = dict(header.get("provenance", {}))
    if request.get("data_summary"):
        provenance["data"] = request["data_summary"]
    if request.get("init_from") and "init_from" not in provenance:
        provenance["init_from"] = request["init_from"]
    return {**header, "provenance": provenance}


def _run(
    request: dict[str, Any], run_dir: Path, device: str, store: Store, *, resume: bool
) -> Path | None:
    from posterforge.engine import resolve_device
    from posterforge.training import distributed
    from posterforge.training.harness import TrainConfig, Trainer
    from posterforge.weights import load_weights

    rank, world_size, dist_device = distributed.init_from_env()
    dev = dist_device if world_size > 1 else resolve_device(device)
    harness = {k: v for k, v in request["recipe"]["train"].items() if k in HARNESS_KEYS}
    if "max_steps" not in harness:
        raise PosterforgeError("the recipe sets no train.max_steps: pass --max-steps")
    stream = _data(request, rank, world_size)
    try:
        updates = getattr(stream, "recipe_updates", None)
        if updates is not None:  # what the data decided (label names), for the task and resume
            request["recipe"]["model"].update(updates())
        task = _task(request, str(dev), store)
    except BaseException:
        _close(stream)
        raise
    if rank == 0 and not resume:  # the family has accepted the recipe: now what it will do
        from posterforge.training.schedules import unreached

        for note in unreached(request["recipe"]["model"], int(harness["max_steps"])):
            log.warning("posterforge: note: %s", note)
    summary = getattr(stream, "summary", None)
    if summary is not None:
        request["data_summary"] = summary()
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "request.json", json.dumps(request, indent=2) + "\n")
    if resume:
        trainer = Trainer.resume(run_dir, task, stream, device=str(dev), **harness)
    else:
        config = TrainConfig(run_dir=run_dir, seed=int(request["seed"]), device=str(dev), **harness)
        trainer = Trainer(task, stream, config)
    try:
        trainer.run()
    finally:
        _close(stream)
    distributed.barrier()
    if rank != 0:
        return None
    model = load_weights(run_dir / "model.safetensors")
    return store.put(request["name"], model.tensors, _header(model.header, request), overwrite=True)


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def export(
    run_dir: str | Path,
    name: str,
    *,
    step: int | None = None,
    overwrite: bool = False,
    store: Store | None = None,
) -> Path:
    """Store the model of any checkpoint of a run (the newest, or ``step``) under ``name``.
    Needs only the run folder: the training data may be gone."""
    from posterforge.catalog import check_free_name
    from posterforge.plugins import get_host
    from posterforge.training.harness import list_checkpoints, load_checkpoint

    run_dir, store = Path(run_dir), store or Store()
    check_free_name(name, get_host(), store, overwrite=overwrite)
    request = read_request(run_dir)
    found = dict(list_checkpoints(run_dir))
    if not found or (step is not None and step not in found):
        have = ", ".join(map(str, sorted(found))) or "none"
        raise PosterforgeError(f"{run_dir}: no checkpoint at step {step} (have: {have})")
    task = _task(request, "cpu", store)
    task.load_state_dict(load_checkpoint(found[step if step is not None else max(found)])["task"])
    tensors, header = task.export()
    return store.put(name, tensors, _header(header, request), overwrite=overwrite)
