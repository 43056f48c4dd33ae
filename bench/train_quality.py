"""Benchmark (issue 15): CycleGAN training quality and speed, bf16 autocast against fp32.

Trains the same small recipe with ``precision = "fp32"`` and ``precision = "bf16"`` for the same
number of steps, over several seeds (network initialisation, data order and augmentation), on two
synthetic unpaired data sets whose ideal translation is known:

* ``cast``: the acceptance test's domains (tests/test_cyclegan_training.py): smooth 40x40 scenes
  with a red cast (A) or a blue cast (B), 48 each; the recipe is the test's TINY (32x32 crops,
  ngf 8, 2 residual blocks, ndf 8, batch 4).
* ``grade``: 72x72 scenes with hard-edged shapes, 240 each; A has a warm cast, B is A graded:
  hue rotated 90 degrees, contrast x1.3 and darker, with dark ink outlines along the edges (a
  texture, not only a colour map); 64x64 crops, ngf 8, 2 blocks, ndf 8, batch 4.

After training, on held-out scenes (fp32, eval mode, no autocast) each run reports:

* moved: how far ``G_AB`` moved a colour statistic of held-out A from its value towards the value
  of the same scenes in domain B (``cast``: mean(R - B), as the test; ``grade``: the mean colour
  projected on the A-to-B mean colour difference); 100% is the ideal, higher is better;
* err: mean |G_AB(a) - ideal| in [0, 1] units, ideal being the same scene made in domain B
  (the identity's error is printed as the baseline); lower is better;
* cycle: mean |G_BA(G_AB(a)) - a| on held-out A; lower is better;

and the wall seconds of the training steps, steps/s, and the 1-minute load average before and
after the run. Each run is its own process with ``--threads`` torch threads (1 by default: on a
shared 2-core machine a run with 2 threads next to a busy process was measured 10x slower than
with 1); the runs take the precisions in turn, seed by seed, so that a change in load hits both.

Per data set and precision it prints the mean and standard deviation over the seeds, then a
verdict: "bf16 within noise of fp32" when, for every quality metric, the bf16 mean lies within
the fp32 seeds' range or within 2 standard errors of the fp32 mean (the standard error of the
difference of the two means); otherwise which metric is worse.

    .venv/bin/python bench/train_quality.py            # 3 seeds; ~15 minutes on 2 AVX2 cores
    .venv/bin/python bench/train_quality.py --quick    # 2 seeds, short runs; ~3 minutes
    .venv/bin/python bench/train_quality.py --sets cast --seeds 5 --steps 200 --threads 2

On a CPU without native bf16 (no AVX512-BF16/AMX: ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``
is False) autocast's bf16 convolutions fall back to ATen's slow im2col path, and bf16 runs many
times slower than fp32; the script says so in its header. The quality figures still hold: the
rounding is the same.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("fp32", "bf16")

# -- the synthetic domains (the scene and cast functions are those of tests/test_cyclegan_training)

CAST = {"A": (60, 0, -60), "B": (-60, 0, 60)}  # red cast vs blue cast, in 0..255
WARM = (40, 10, -40)  # grade: domain A's cast


def scene(rng: np.random.Generator, size: int = 40, sharp: float = 1.0) -> np.ndarray:
    """A smooth random scene: a two-colour gradient and a few ellipses, float 0..255 (HWC).
    ``sharp`` > 1 narrows the ellipses' soft edges (1 is the test's scene)."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    c0, c1 = rng.uniform(60, 190, size=(2, 3))
    t = rng.uniform(0, 1)
    ramp = (np.cos(t * np.pi) * xx + np.sin(t * np.pi) * yy)[..., None]
    img = c0 + (c1 - c0) * ramp / max(1e-6, ramp.max())
    for _ in range(rng.integers(2, 5)):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(4, size / 3, 2)
        d = ((yy * (size - 1) - cy) / ry) ** 2 + ((xx * (size - 1) - cx) / rx) ** 2
        alpha = np.clip((1 - d) * sharp + 0.5, 0, 1)[..., None]
        img = img * (1 - alpha) + rng.uniform(40, 215, 3) * alpha
    return img


def with_cast(img: np.ndarray, domain: str) -> np.ndarray:
    return np.clip(img + np.asarray(CAST[domain]), 0, 255).astype(np.uint8)


def hue_rotation(degrees: float) -> np.ndarray:
    """The 3x3 matrix rotating RGB about the grey axis (Rodrigues' formula)."""
    k = np.ones(3) / math.sqrt(3)
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return c * np.eye(3) + s * cross + (1 - c) * np.outer(k, k)


HUE = hue_rotation(90)


def grade(a: np.ndarray) -> np.ndarray:
    """Domain B of the ``grade`` set from an A image (HWC, 0..255): hue +90 degrees, contrast
    x1.3 about mid grey and 10 darker, then ink outlines where the A image has edges."""
    rgb = a.astype(np.float64) @ HUE.T
    rgb = (rgb - 128) * 1.3 + 118
    lum = a.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    gy, gx = np.gradient(lum)
    ink = np.clip((np.hypot(gx, gy) - 6) / 18, 0, 1)[..., None]
    return np.clip(rgb * (1 - 0.75 * ink), 0, 255).astype(np.uint8)


def warm(img: np.ndarray) -> np.ndarray:
    return np.clip(img + np.asarray(WARM), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class DataSet:
    name: str
    recipe: dict[str, Any]
    images: int  # per domain
    image_size: int
    sharp: float
    steps: int
    quick_steps: int
    held_out: int
    describe: str

    def make(self, rng: np.random.Generator, domain: str) -> np.ndarray:
        """A new random scene in ``domain`` (uint8 HWC)."""
        return self.render(scene(rng, self.image_size, self.sharp), domain)

    def render(self, img: np.ndarray, domain: str) -> np.ndarray:
        """A scene (float HWC) in ``domain``: the same scene in "B" is the ideal G_AB of "A"."""
        if self.name == "cast":
            return with_cast(img, domain)
        return warm(img) if domain == "A" else grade(warm(img))


TINY = dict(size=32, load_size=36, batch_size=4, ngf=8, n_blocks=2, ndf=8, lr=2e-4)
SETS = {
    "cast": DataSet(
        "cast",
        TINY,
        images=48,
        image_size=40,
        sharp=1.0,
        steps=100,
        quick_steps=40,
        held_out=16,
        describe="red vs blue cast, 40x40 scenes, 48/domain; 32x32 crops, ngf 8, 2 blocks, batch 4",
    ),
    "grade": DataSet(
        "grade",
        dict(TINY, size=64, load_size=72),
        images=240,
        image_size=72,
        sharp=4.0,
        steps=100,
        quick_steps=16,
        held_out=16,
        describe="hue +90, contrast, ink outlines, 72x72 scenes, 240/domain; 64x64 crops, ngf 8, "
        "2 blocks, batch 4",
    ),
}


def write_domain(folder: Path, ds: DataSet, domain: str, n: int, seed: int) -> Path:
    from posterforge.images import encode_atomic

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        encode_atomic(ds.make(rng, domain), folder / f"{domain}{i:03d}.png")
    return folder


def held_out(ds: DataSet) -> tuple[np.ndarray, np.ndarray]:
    """Held-out A scenes (seed 99, not among the training scenes) and the same scenes in B."""
    rng = np.random.default_rng(99)
    scenes = [scene(rng, ds.image_size, ds.sharp) for _ in range(ds.held_out)]
    return (
        np.stack([ds.render(s, "A") for s in scenes]),
        np.stack([ds.render(s, "B") for s in scenes]),
    )


def direction(ds: DataSet, x, ideal) -> Any:
    """The colour direction of the ``moved`` statistic (a (3,) tensor)."""
    import torch

    if ds.name == "cast":
        return torch.tensor([1.0, 0.0, -1.0])  # mean(R - B), as the test
    d = (ideal - x).mean(dim=(0, 2, 3))
    return d / d.norm()


# -- one run (a child process) -------------------------------------------------------------------


def run(ds: DataSet, precision: str, seed: int, steps: int, a: Path, b: Path) -> dict[str, float]:
    import torch

    from posterforge_cyclegan.training import CycleGANTask, UnpairedStream

    torch.manual_seed(seed)  # the augmentation draws from the global generator
    recipe = dict(ds.recipe, precision=precision)
    task = CycleGANTask(recipe, device="cpu", seed=seed)
    r = task.recipe
    data = UnpairedStream(a, b, batch_size=r.batch_size, load_size=r.load_size, seed=seed)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        for i in range(steps):
            out = task.step(next(data), i)
        float(out["loss_G"])  # one host sync, as a logged step
    finally:
        data.close()
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]

    held_a, ideal_np = held_out(ds)
    x = torch.from_numpy(held_a).permute(0, 3, 1, 2).float() / 255
    ideal = torch.from_numpy(ideal_np).permute(0, 3, 1, 2).float() / 255
    g_ab, g_ba = task.G_AB.eval(), task.G_BA.eval()
    with torch.no_grad():
        y = g_ab(x * 2 - 1).add(1).mul(0.5).clamp(0, 1)
        back = g_ba(y * 2 - 1).add(1).mul(0.5).clamp(0, 1)
    d = direction(ds, x, ideal)

    def stat(images: torch.Tensor) -> float:
        return float(torch.einsum("nchw,c->", images, d) / images[:, 0].numel())

    before, after, target = stat(x), stat(y), stat(ideal)
    return {
        "wall_s": wall,
        "steps_per_s": steps / wall,
        "moved": (after - before) / (target - before),
        "err": float((y - ideal).abs().mean()),
        "err_identity": float((x - ideal).abs().mean()),
        "cycle": float((back - x).abs().mean()),
        "load_before": load_before,
        "load_after": load_after,
    }


# -- the driver ----------------------------------------------------------------------------------

METRICS = (  # name, header, higher is better, format
    ("moved", "moved %", True, "{:.0%}"),
    ("err", "|G_AB(a)-ideal|", False, "{:.4f}"),
    ("cycle", "|G_BA(G_AB(a))-a|", False, "{:.4f}"),
)


def spread(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def within_noise(fp32: list[float], bf16: list[float]) -> bool:
    """bf16's mean within the fp32 seeds' range, or within 2 standard errors of fp32's mean."""
    mb, sb = spread(bf16)
    mf, sf = spread(fp32)
    se = math.sqrt(sf**2 / len(fp32) + sb**2 / len(bf16))
    return min(fp32) <= mb <= max(fp32) or abs(mb - mf) <= 2 * se


def bf16_note() -> str:
    import torch

    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    cpu = torch.backends.cpu.get_cpu_capability()
    if native:
        return f"CPU capability {cpu}; oneDNN bf16 supported (native bf16 convolutions)"
    return (
        f"CPU capability {cpu}; oneDNN bf16 NOT supported here: autocast's bf16 convolutions take "
        "ATen's slow im2col path, so bf16 is expected to be slower than fp32 on this CPU"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 seeds and short runs (~3 minutes)")
    ap.add_argument("--sets", default="cast,grade", help="comma-separated: cast, grade")
    ap.add_argument("--seeds", type=int, help="seeds per precision (default 3; --quick 2)")
    ap.add_argument("--steps", type=int, help="steps per run (default: per set, 100)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    ap.add_argument("--precisions", default="fp32,bf16", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write every run's figures here")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        name, precision, seed, a, b = args.child
        out = run(SETS[name], precision, int(seed), args.steps, Path(a), Path(b))
        print(json.dumps(out), flush=True)
        return

    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        ap.error(f"unknown set {', '.join(unknown)}: use {', '.join(SETS)}")
    precisions = [p.strip() for p in args.precisions.split(",")]
    seeds = args.seeds or (2 if args.quick else 3)
    steps = {n: args.steps or (SETS[n].quick_steps if args.quick else SETS[n].steps) for n in names}
    print(f"# {bf16_note()}")
    print(f"# {args.threads} torch thread(s) per run; load average at start {os.getloadavg()}")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
    }
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        n: {p: [] for p in precisions} for n in names
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pf-bench-quality-") as tmp:
        folders = {}
        for n in names:
            ds = SETS[n]
            folders[n] = (
                write_domain(Path(tmp) / n / "a", ds, "A", ds.images, seed=1),
                write_domain(Path(tmp) / n / "b", ds, "B", ds.images, seed=2),
            )
        for seed in range(seeds):
            for n in names:
                for p in precisions:
                    a, b = folders[n]
                    cmd = [sys.executable, __file__, "--steps", str(steps[n])]
                    cmd += ["--threads", str(args.threads), "--child", n, p, str(seed), str(a)]
                    cmd.append(str(b))
                    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
                    if proc.returncode != 0:
                        sys.stderr.write(proc.stderr)
                        raise SystemExit(f"{n} {p} seed {seed} failed ({proc.returncode})")
                    fig = json.loads(proc.stdout.strip().splitlines()[-1])
                    results[n][p].append(fig)
                    print(
                        f"{n:>5} {p} seed {seed}: {fig['wall_s']:6.1f} s, "
                        f"{fig['steps_per_s']:5.2f} steps/s, moved {fig['moved']:4.0%}, "
                        f"err {fig['err']:.4f} (identity {fig['err_identity']:.4f}), "
                        f"cycle {fig['cycle']:.4f}, load {fig['load_before']:.2f}"
                        f"->{fig['load_after']:.2f}",
                        flush=True,
                    )
    total = time.perf_counter() - began

    worse, better, speed = [], [], []
    for n in names:
        ds = SETS[n]
        print(f"\n{n}: {ds.describe}; {steps[n]} steps, {seeds} seed(s), mean +- sd over seeds")
        head = f"{'':>5} {'wall s':>13} {'steps/s':>13}"
        head += "".join(f" {h:>19}" for _, h, _, _ in METRICS) + "  load (1 min)"
        print(head)
        for p in precisions:
            runs = results[n][p]
            row = f"{p:>5}"
            for key, fmt in (("wall_s", "{:.1f}"), ("steps_per_s", "{:.2f}")):
                m, s = spread([r[key] for r in runs])
                row += f" {fmt.format(m) + ' +- ' + fmt.format(s):>13}"
            for key, _, _, fmt in METRICS:
                m, s = spread([r[key] for r in runs])
                row += f" {fmt.format(m) + ' +- ' + fmt.format(s):>19}"
            loads = [r["load_before"] for r in runs] + [r["load_after"] for r in runs]
            row += f"  {min(loads):.2f}-{max(loads):.2f}"
            print(row)
        identity = results[n][precisions[0]][0]["err_identity"]
        print(f"{'':>5} |a - ideal| (the identity, untrained): {identity:.4f}")
        if set(PRECISIONS) <= set(precisions):
            f32, b16 = results[n]["fp32"], results[n]["bf16"]
            ratio = spread([r["steps_per_s"] for r in b16])[0]
            ratio /= spread([r["steps_per_s"] for r in f32])[0]
            speed.append(f"{n} bf16/fp32 steps/s x{ratio:.2f}")
            paired = []
            for key, header, _, fmt in METRICS:
                m, s = spread([rb[key] - rf[key] for rf, rb in zip(f32, b16, strict=True)])
                paired.append(f"{header} {fmt.format(m)} +- {fmt.format(s)}")
            print(f"{'':>5} bf16 - fp32, same seed: {'; '.join(paired)}")
            for key, header, higher, fmt in METRICS:
                vf, vb = [r[key] for r in f32], [r[key] for r in b16]
                if len(vf) < 2 or within_noise(vf, vb):
                    continue
                mf, mb = statistics.fmean(vf), statistics.fmean(vb)
                what = f"{n} {header} ({fmt.format(mb)} against {fmt.format(mf)}"
                what += f", {mb / mf - 1:+.1%})" if mf else ")"
                (better if (mb > mf) == higher else worse).append(what)
    if set(PRECISIONS) <= set(precisions):
        print()
        if seeds < 2:
            print("verdict: none (one seed gives no estimate of the noise; use --seeds 2 or more)")
        elif worse:
            print(f"verdict: bf16 worse than fp32 on: {', '.join(worse)}")
        else:
            print("verdict: bf16 within noise of fp32")
        if better:
            print(f"         (bf16 better beyond noise on: {', '.join(better)})")
        print(f"speed: {'; '.join(speed)}")
    print(f"total {total / 60:.1f} min; load average at end {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "threads": args.threads, **results}))


if __name__ == "__main__":
    main()
