"""``train`` as a Python API: pick the family's trainer, merge the recipe, run the harness, and
put the result into the weight store under a name (so ``translate --style NAME`` works at once).

A run folder also holds ``request.json`` (what was asked: data folders, merged recipe, name), so
that ``resume(run_dir)`` needs nothing else, also after ``kill -9``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from posterforge import presets
from posterforge.atomic import write_text_atomic
from posterforge.errors import PosterforgeError, UnknownNameError
from posterforge.store import Store, check_name

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


def load_recipe(preset: str, overrides: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    recipe = presets.load("train", preset)
    merged = {"train": dict(recipe.get("train", {})), "model": dict(recipe.get("model", {}))}
    for section, values in parse_overrides(overrides).items():
        merged[section].update(values)
    return merged


def _trainer_spec(kind: str, arch: str | None):
    from posterforge.plugins import get_host

    specs = {n: s for n, s in get_host().trainers.items() if s.kind == kind}
    if arch is not None:
        if arch not in specs:
            raise UnknownNameError(f"{kind} trainer", arch, specs)
        return specs[arch]
    if not specs:
        raise PosterforgeError(f"no plugin offers {kind} training")
    return specs[sorted(specs)[0]]


def train(
    kind: str,
    data: dict[str, str | Path],
    name: str,
    run_dir: str | Path,
    *,
    arch: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    init_from: str | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
    store: Store | None = None,
) -> Path | None:
    """Train a new model of ``kind`` ("translator" or "generator") and store it as ``name``.

    ``data`` names the family's inputs (``{"a": DIR, "b": DIR}`` for CycleGAN, ``{"data": DIR,
    "labels": FILE}`` for the genre cGAN). ``preset`` defaults to the recipe named after the
    family (``presets/train/genre-cgan.toml``), else ``default``.

    Returns the stored weight file (``None`` on DDP ranks other than 0). Configuration errors
    (unknown preset, name taken, missing data folder) raise before any training starts.
    """
    store = store or Store()
    check_name(name)
    if store.has(name) and not overwrite:
        raise PosterforgeError(f"weights named {name!r} exist already; pass --overwrite")
    for key, path in data.items():
        if not Path(path).exists():
            raise PosterforgeError(f"--{key} {path}: not found")
    spec = _trainer_spec(kind, arch)
    if preset is None:
        preset = spec.name if spec.name in presets.names("train") else "default"
    recipe = load_recipe(preset, overrides)
    init_weights = None
    if init_from is not None:
        init_weights = _load_init(init_from, kind, store)
        # the generator's shape comes from the weights it starts from
        recipe["model"].update(
            {
                k: init_weights.config[k]
                for k in ("ngf", "n_blocks", "affine")
                if k in init_weights.config
            }
        )
    if max_steps is not None:
        recipe["train"]["max_steps"] = max_steps
    run_dir = Path(run_dir)
    request = {
        "kind": kind,
        "arch": spec.name,
        "name": name,
        "preset": preset,
        "seed": seed,
        "data": {k: str(Path(v).resolve()) for k, v in data.items()},
        "recipe": recipe,
        "init_from": init_from,
    }
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise PosterforgeError(f"{run_dir} holds a run already: resume it with --resume {run_dir}")
    return _run(request, run_dir, device, store, resume=False, init_weights=init_weights)


def resume(
    run_dir: str | Path,
    *,
    max_steps: int | None = None,
    device: str = "auto",
    store: Store | None = None,
) -> Path | None:
    """Continue the run in ``run_dir`` exactly where its last checkpoint left it."""
    run_dir = Path(run_dir)
    try:
        request = json.loads((run_dir / "request.json").read_text())
    except (OSError, ValueError) as e:
        raise PosterforgeError(f"cannot resume {run_dir}: no readable request.json ({e})") from None
    if max_steps is not None:
        request["recipe"]["train"]["max_steps"] = max_steps
    return _run(request, run_dir, device, store or Store(), resume=True, init_weights=None)


def _load_init(spec: str, kind: str, store: Store):
    from posterforge.catalog import resolve_weights
    from posterforge.plugins import get_host
    from posterforge.weights import load_weights

    weights = load_weights(resolve_weights(spec, get_host(), store))
    if weights.header.get("kind") != kind:
        raise PosterforgeError(
            f"--init-from {spec}: holds a {weights.header.get('kind')}, not a {kind}"
        )
    return weights


def _build(request: dict[str, Any], device: str, rank: int, world_size: int, init_weights: Any):
    """The family's task and batch stream for a saved or new request."""
    from posterforge.training.spec import TrainRequest

    spec = _trainer_spec(request["kind"], request["arch"])
    try:
        return spec.make(
            TrainRequest(
                data={k: Path(v) for k, v in request["data"].items()},
                recipe=dict(request["recipe"]["model"]),
                device=device,
                seed=int(request["seed"]),
                rank=rank,
                world_size=world_size,
                init_from=init_weights,
            )
        )
    except ValueError as e:  # the family refuses the recipe or the data
        raise PosterforgeError(f"{spec.name} recipe: {e}") from None


def _run(
    request: dict[str, Any],
    run_dir: Path,
    device: str,
    store: Store,
    *,
    resume: bool,
    init_weights: Any,
) -> Path | None:
    from posterforge.engine import resolve_device
    from posterforge.training import distributed
    from posterforge.training.harness import TrainConfig, Trainer
    from posterforge.weights import load_weights

    rank, world_size, dist_device = distributed.init_from_env()
    dev = dist_device if world_size > 1 else resolve_device(device)
    task, stream = _build(request, str(dev), rank, world_size, init_weights)
    harness = {k: v for k, v in request["recipe"]["train"].items() if k in HARNESS_KEYS}
    if "max_steps" not in harness:
        raise PosterforgeError("the recipe sets no train.max_steps: pass --max-steps")
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "request.json", json.dumps(request, indent=2) + "\n")
    if resume:
        trainer = Trainer.resume(run_dir, task, stream, device=str(dev), **harness)
    else:
        config = TrainConfig(run_dir=run_dir, seed=int(request["seed"]), device=str(dev), **harness)
        trainer = Trainer(task, stream, config)
    trainer.run()
    distributed.barrier()
    if rank != 0:
        return None
    model = load_weights(run_dir / "model.safetensors")
    return store.put(request["name"], model.tensors, model.header, overwrite=True)


def export(
    run_dir: str | Path,
    name: str,
    *,
    step: int | None = None,
    overwrite: bool = False,
    store: Store | None = None,
) -> Path:
    """Store the model of any checkpoint of a run (the newest, or ``step``) under ``name``."""
    from posterforge.training.harness import list_checkpoints, load_checkpoint

    run_dir, store = Path(run_dir), store or Store()
    if store.has(name) and not overwrite:
        raise PosterforgeError(f"weights named {name!r} exist already; pass --overwrite")
    try:
        request = json.loads((run_dir / "request.json").read_text())
    except (OSError, ValueError) as e:
        raise PosterforgeError(f"{run_dir}: not a training run ({e})") from None
    found = dict(list_checkpoints(run_dir))
    if not found or (step is not None and step not in found):
        have = ", ".join(map(str, sorted(found))) or "none"
        raise PosterforgeError(f"{run_dir}: no checkpoint at step {step} (have: {have})")
    task, stream = _build(request, "cpu", 0, 1, None)
    close = getattr(stream, "close", None)
    if close is not None:
        close()
    task.load_state_dict(load_checkpoint(found[step if step is not None else max(found)])["task"])
    tensors, header = task.export()
    return store.put(name, tensors, header, overwrite=overwrite)
