"""CycleGAN training end to end: the task under the real harness, losses, schedules, resume."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from posterforge import plugins
from posterforge.images import encode_atomic
from posterforge.training.harness import TrainConfig, Trainer
from posterforge.training.task import TrainingTask, scalars
from posterforge.weights import Weights, load_weights, make_header
from posterforge_cyclegan import CycleGANResnet
from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.network import ResnetGenerator
from posterforge_cyclegan.training import (
    CycleGANRecipe,
    CycleGANTask,
    UnpairedStream,
    make_data,
    make_task,
)

TINY = dict(size=32, load_size=36, batch_size=4, ngf=8, n_blocks=2, ndf=8, lr=2e-4)
CAST = {"A": (60, 0, -60), "B": (-60, 0, 60)}  # red cast vs blue cast, in 0..255


def scene(rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """A smooth random scene: a two-colour gradient and a few soft ellipses, float 0..255."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    c0, c1 = rng.uniform(60, 190, size=(2, 3))
    t = rng.uniform(0, 1)
    ramp = (np.cos(t * np.pi) * xx + np.sin(t * np.pi) * yy)[..., None]
    img = c0 + (c1 - c0) * ramp / max(1e-6, ramp.max())
    for _ in range(rng.integers(2, 5)):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(4, size / 3, 2)
        d = ((yy * (size - 1) - cy) / ry) ** 2 + ((xx * (size - 1) - cx) / rx) ** 2
        alpha = np.clip(1.5 - d, 0, 1)[..., None]
        img = img * (1 - alpha) + rng.uniform(40, 215, 3) * alpha
    return img


def with_cast(img: np.ndarray, domain: str) -> np.ndarray:
    return np.clip(img + np.asarray(CAST[domain]), 0, 255).astype(np.uint8)


def write_domain(folder: Path, domain: str, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        encode_atomic(with_cast(scene(rng), domain), folder / f"{domain}{i:03d}.png")
    return folder


def red_minus_blue(images: torch.Tensor) -> float:
    """The test's colour statistic: mean(R - B) of ``(N, 3, H, W)`` images in [0, 1]."""
    return float((images[:, 0] - images[:, 2]).mean())


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("domains")
    # different seeds: the two domains hold different scenes of the same kind (unpaired)
    return write_domain(root / "a", "A", 48, seed=1), write_domain(root / "b", "B", 48, seed=2)


def tiny_batch(seed: int = 0, n: int = 4, size: int = 36) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(n, 3, size, size, generator=g), "B": torch.rand(n, 3, size, size)}


def config(run_dir: Path, max_steps: int, **kw: Any) -> TrainConfig:
    base = dict(checkpoint_every=10_000, sample_every=10_000, log_every=50, export=True)
    return TrainConfig(run_dir, max_steps, **{**base, **kw})


def all_tensors(task: CycleGANTask) -> list[torch.Tensor]:
    state = task.state_dict()
    out = [t for name in ("G_AB", "G_BA", "D_A", "D_B") for t in state[name].values()]
    for opt in ("opt_G", "opt_D"):
        for s in state[opt]["state"].values():
            out += [torch.as_tensor(v) for v in s.values()]
    return [*out, state["pool_A"]["images"], state["pool_B"]["images"]]


# -- the key acceptance test ---------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_domains_learn_the_colour_cast(tmp_path, domains):
    a, b = domains
    steps = int(os.environ.get("PF_TINY_STEPS", "100"))
    task = make_task(dict(TINY), seed=0)
    data = make_data({"a": a, "b": b}, dict(TINY), seed=0)
    assert isinstance(task, TrainingTask)
    start = time.perf_counter()
    Trainer(task, data, config(tmp_path / "run", steps)).run()
    elapsed = time.perf_counter() - start
    data.close()

    # held-out scenes, translated by the exported file through the normal translator path
    rng = np.random.default_rng(99)
    held_a = np.stack([with_cast(scene(rng), "A") for _ in range(16)])
    rng = np.random.default_rng(99)
    same_b = np.stack([with_cast(scene(rng), "B") for _ in range(16)])
    x = torch.from_numpy(held_a).permute(0, 3, 1, 2).float() / 255
    ideal = torch.from_numpy(same_b).permute(0, 3, 1, 2).float() / 255  # a perfect G_AB(x)
    target = red_minus_blue(ideal)
    weights = load_weights(tmp_path / "run" / "model.safetensors")
    assert weights.header["provenance"]["steps"] == steps
    with torch.no_grad():
        y = CycleGANResnet.build(weights)(x)
    before, after = red_minus_blue(x), red_minus_blue(y)
    moved = (before - after) / (before - target)
    err_before, err_after = float((x - ideal).abs().mean()), float((y - ideal).abs().mean())
    print(
        f"\ntiny domains: {steps} steps in {elapsed:.1f}s; mean(R-B) of held-out A "
        f"before={before:.3f} after G_AB={after:.3f} target (same scenes as B)={target:.3f}; "
        f"moved {moved:.0%} of the way; mean |G_AB(x) - ideal| {err_before:.3f} -> {err_after:.3f}"
    )
    assert (tmp_path / "run" / "samples" / f"step-{steps:08d}.png").is_file()
    assert moved >= 0.5
    assert err_after < 0.6 * err_before  # the scenes survive: not just a blue wash


# -- losses, schedules, state --------------------------------------------------------------------


def test_recipe_rejects_unknown_keys_and_parses_schedules():
    with pytest.raises(ValueError, match="nope, size2"):
        CycleGANRecipe.from_dict({"size2": 3, "nope": 1})
    with pytest.raises(ValueError, match="loss"):
        CycleGANRecipe.from_dict({"loss": "hinge"})
    r = CycleGANRecipe.from_dict({"cycle_weight": {"start": 10, "end": 5, "decay_steps": 10}})
    assert r.cycle_weight(5) == 7.5 and r.identity_weight(0) == 5.0 and r.grad_clip is None
    assert r.lr(0) == 2e-4 and r.lr(150_000) == pytest.approx(1e-4)
    assert CycleGANRecipe.from_dict(r.to_dict()) == r


def test_wgan_gp_step_reports_the_penalty():
    task = CycleGANTask(dict(TINY, loss="wgan-gp", gp_weight=10.0))
    raw = task.step(tiny_batch(), 0)
    # losses stay tensors (no host sync in the step); schedule values are plain floats
    assert all(
        isinstance(raw[k], torch.Tensor) and raw[k].ndim == 0 and not raw[k].requires_grad
        for k in ("loss_G", "loss_D", "cycle", "identity", "adv", "gp")
    )
    out = scalars(raw)  # what the harness logs
    assert {"loss_G", "loss_D", "cycle", "identity", "adv", "gp", "lr", "cycle_weight"} <= set(out)
    assert all(isinstance(v, float) for v in out.values())
    assert out["gp"] > 0 and out["wgan"] == 1.0


def test_wgan_from_step_switches_the_loss():
    task = CycleGANTask(dict(TINY, wgan_from_step=2))
    outs = [task.step(tiny_batch(i), i) for i in range(4)]
    assert [("gp" in o, o["wgan"]) for o in outs] == [
        (False, 0.0),
        (False, 0.0),
        (True, 1.0),
        (True, 1.0),
    ]


def test_step_follows_the_schedules():
    lr = {"start": 1e-3, "end": 0.0, "decay_start": 2, "decay_steps": 4}
    cw = {"start": 10.0, "end": 2.0, "decay_start": 1, "decay_steps": 2}
    task = CycleGANTask(dict(TINY, lr=lr, cycle_weight=cw, identity_weight=0, grad_clip=0.5))
    outs = [task.step(tiny_batch(i), i) for i in range(7)]
    assert [o["lr"] for o in outs] == pytest.approx([1e-3, 1e-3, 1e-3, 7.5e-4, 5e-4, 2.5e-4, 0])
    assert [o["cycle_weight"] for o in outs] == pytest.approx([10, 10, 6, 2, 2, 2, 2])
    assert all(o["identity"] == 0 and o["grad_clip"] == 0.5 for o in outs)
    assert task.opt_G.param_groups[0]["lr"] == 0 and task.opt_D.param_groups[0]["lr"] == 0


def test_state_dict_loads_with_weights_only():
    task = CycleGANTask(dict(TINY, pool_size=3))
    task.step(tiny_batch(), 0)
    buf = io.BytesIO()
    torch.save(task.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["pool_A"]["images"].shape == (3, 3, 32, 32)
    fresh = CycleGANTask(dict(TINY, pool_size=3), seed=1)
    fresh.load_state_dict(state)
    assert all(
        torch.equal(x, y) for x, y in zip(all_tensors(fresh), all_tensors(task), strict=True)
    )


def test_resume_is_exact(tmp_path, domains):
    a, b = domains
    # the pool fills during the first step (batches of 4) and swaps images from then on
    recipe = dict(TINY, pool_size=2, loss="wgan-gp", grad_clip=5.0)

    def fresh() -> tuple[CycleGANTask, UnpairedStream]:
        return make_task(recipe, seed=3), make_data({"a": a, "b": b}, recipe, seed=3)

    whole, whole_data = fresh()
    Trainer(whole, whole_data, config(tmp_path / "whole", 4, checkpoint_every=2)).run()
    part, part_data = fresh()
    Trainer(part, part_data, config(tmp_path / "part", 2, checkpoint_every=2)).run()
    resumed, resumed_data = fresh()
    Trainer.resume(tmp_path / "part", resumed, resumed_data, max_steps=4).run()
    for d in (whole_data, part_data, resumed_data):
        d.close()
    x, y = all_tensors(whole), all_tensors(resumed)
    assert len(x) == len(y) and all(torch.equal(p, q) for p, q in zip(x, y, strict=True))
    assert not torch.equal(all_tensors(part)[0], x[0])  # the last 2 steps did change something


def test_init_from_sets_both_generators_and_their_config():
    torch.manual_seed(5)
    src = ResnetGenerator(ResnetConfig(ngf=4, n_blocks=1))
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    tensors = {k: v.clone() for k, v in src.state_dict().items()}
    weights = Weights(make_header("translator", "cyclegan-resnet", src.config.to_dict()), tensors)
    task = CycleGANTask(dict(TINY, ngf=8), init_from=weights)
    assert task.recipe.ngf == 4 and task.recipe.n_blocks == 1 and task.G_AB.config.ngf == 4
    for g in (task.G_AB, task.G_BA):
        got = g.state_dict()
        assert got.keys() == tensors.keys()
        assert all(torch.equal(got[k], tensors[k]) for k in tensors)
    task.step(tiny_batch(), 0)  # trains at the new size
    with pytest.raises(ValueError, match="cyclegan-resnet"):
        CycleGANTask(TINY, init_from=Weights(make_header("translator", "other", {}), {}))


def test_sample_grid_and_exports():
    task = CycleGANTask(TINY)
    task.G_AB.eval()
    grid = task.sample_grid(tiny_batch(n=2))
    assert grid.shape == (3, 2 * 34 + 2, 6 * 34 + 2) and grid.min() >= 0 and grid.max() <= 1
    assert not task.G_AB.training and task.G_BA.training  # modes restored as they were
    for tensors, header in (task.export(), task.export_reverse()):
        assert header["arch"] == "cyclegan-resnet" and header["kind"] == "translator"
        CycleGANResnet.build(Weights(header, tensors))
    assert task.export()[1]["provenance"]["direction"] == "A->B"
    assert task.export_reverse()[1]["provenance"]["direction"] == "B->A"


def test_the_plugin_registers_the_family(domains):
    family = plugins.get_host().families["cyclegan"]
    assert family.kind == "translator" and [i.name for i in family.inputs] == ["a", "b"]
    assert {"default", "anime"} <= set(family.recipe_names())
    a, b = domains
    from posterforge.context import default_context

    ctx = default_context()  # cyclegan's factories take no ctx: they are called without it
    task = family.task(dict(TINY), ctx=ctx)
    data = family.data({"a": a, "b": b}, dict(TINY), ctx=ctx)
    try:
        batch = next(data)
        assert batch["A"].shape == batch["B"].shape == (4, 3, 36, 36)
        assert isinstance(task, CycleGANTask)
    finally:
        data.close()
    with pytest.raises(ValueError, match="b"):
        make_data({"a": a}, {})
