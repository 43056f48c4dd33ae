"""Benchmark: one training step of a poster generator family, posterforge's against a plain step.

    .venv/bin/python bench/train_generator.py --family genre-cgan [--steps 8] [--rounds 3]
    .venv/bin/python bench/train_generator.py --family stylegan

Both sides build the family's own networks with its default recipe's sizes (genre cGAN: DCGAN
at 64x128, batch 64, ngf/ndf 64; StyleGAN: 64x128, batch 32) on the same synthetic demo
posters. The plain step is what a user would write from the paper: PIL open and resize per
poster, to-tensor, eager fp32, default Adam, the same losses (cGAN: non-saturating BCE; StyleGAN:
logistic loss with lazy R1 every 16 steps, style mixing, no ADA), an EMA of G, and
``loss.item()`` each step. ``ours`` is the family's ``task.step`` fed by its streaming data
loader; ``ours-bf16`` the same with ``precision = "bf16"``. Each side runs in its own process;
the sides run in turn, ``--rounds`` times, so that a change in the machine's load hits every side.

Prints, after a line saying whether this CPU has native bf16: each side's median seconds per
step (after warm-up), the median of the per-round ratios plain/ours (> 1: ours is faster) with
their min-max, each side's peak RSS, and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
FAMILIES = ("genre-cgan", "stylegan")
IMPLS = ("plain", "ours", "ours-bf16")


def _posters(data: Path, size: tuple[int, int]):
    """(path, multi-hot) of every demo poster, and a loader of a random batch, as a user's loop
    would read them: PIL per file each step."""
    import csv

    import torch
    import torchvision.transforms.functional as TF
    from PIL import Image

    from posterforge_genre_cgan import genre_vocabulary

    names = list(genre_vocabulary()["names"])
    rows = []
    with open(data / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            y = torch.zeros(len(names))
            for g in row["genres"].split("|"):
                y[names.index(g)] = 1.0
            rows.append((data / row["path"], y))

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        picked = random.sample(rows, n) if n <= len(rows) else random.choices(rows, k=n)
        images = [TF.to_tensor(Image.open(p).convert("RGB").resize(size)) for p, _ in picked]
        return torch.stack(images) * 2 - 1, torch.stack([y for _, y in picked])

    return len(names), batch


def _ema(ema, net, decay: float = 0.999) -> None:
    import torch

    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters(), strict=True):
            e.lerp_(p, 1 - decay)


def plain_cgan(data: Path, steps: int, warmup: int) -> list[float]:
    import copy

    import torch
    import torch.nn.functional as F

    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreDiscriminator, GenreGenerator

    torch.manual_seed(0)
    random.seed(0)
    n_labels, load = _posters(data, (64, 128))
    G = GenreGenerator(GenreConfig(z_dim=100, ngf=64), n_labels)
    D = GenreDiscriminator(n_labels, 64)
    G_ema = copy.deepcopy(G).eval()
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        real, y = load(64)
        fake = G(torch.randn(len(real), 100), y)
        rs, fs = D(real, y), D(fake.detach(), y)
        loss_d = bce(rs, torch.ones_like(rs)) + bce(fs, torch.zeros_like(fs))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        gs = D(fake, y)
        loss_g = bce(gs, torch.ones_like(gs))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        _ema(G_ema, G)
        loss_d.item(), loss_g.item()  # what a training loop prints
        times.append(time.perf_counter() - start)
    return times[warmup:]


def plain_stylegan(data: Path, steps: int, warmup: int) -> list[float]:
    import copy

    import torch

    from posterforge_stylegan import losses
    from posterforge_stylegan.network import StyleDiscriminator, StyleGenerator
    from posterforge_stylegan.training import StyleGANRecipe

    torch.manual_seed(0)
    random.seed(0)
    r = StyleGANRecipe()
    n_labels, load = _posters(data, tuple(r.image_size))
    G = StyleGenerator(r.generator_config(n_labels))
    D = StyleDiscriminator(r.discriminator_config(G.config))
    G_ema = copy.deepcopy(G).eval()
    ratio = r.r1_interval / (r.r1_interval + 1)
    opt_g = torch.optim.Adam(G.parameters(), r.lr_g, betas=r.betas)
    opt_d = torch.optim.Adam(
        D.parameters(), r.lr_d * ratio, betas=(r.betas[0] ** ratio, r.betas[1] ** ratio)
    )
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        real, y = load(r.batch_size)
        with torch.no_grad():
            fake = G.synthesis(G.mixed_ws(torch.randn(len(real), r.z_dim), y, mixing_prob=0.9))
        r1_step = i % r.r1_interval == 0
        real.requires_grad_(r1_step)
        real_logits = D(real, y)
        loss_d = losses.d_logistic(real_logits, D(fake, y))
        if r1_step:
            loss_d = loss_d + losses.r1_penalty(real, real_logits) * (r.r1_gamma / 2 * 16)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        D.requires_grad_(False)
        ws = G.mixed_ws(torch.randn(len(real), r.z_dim), y, mixing_prob=0.9)
        loss_g = losses.g_nonsaturating(D(G.synthesis(ws), y))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
        _ema(G_ema, G)
        loss_d.item(), loss_g.item()
        times.append(time.perf_counter() - start)
    return times[warmup:]


def ours(family: str, data: Path, steps: int, warmup: int, precision: str) -> list[float]:
    import importlib

    import torch

    training = importlib.import_module(
        {"genre-cgan": "posterforge_genre_cgan", "stylegan": "posterforge_stylegan"}[family]
        + ".training"
    )
    recipe = {"precision": precision}
    torch.manual_seed(0)
    task = training.make_task(recipe, device="cpu", seed=0)
    stream = iter(training.make_data({"data": data, "labels": data / "labels.csv"}, recipe))
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        out = task.step(next(stream), i)
        {k: float(v) for k, v in out.items()}  # the harness's log line syncs like this
        times.append(time.perf_counter() - start)
    return times[warmup:]


def child(family: str, impl: str, data: str, steps: int, warmup: int) -> None:
    if impl == "plain":
        run = plain_cgan if family == "genre-cgan" else plain_stylegan
        times = run(Path(data), steps, warmup)
    else:
        times = ours(family, Path(data), steps, warmup, "bf16" if impl == "ours-bf16" else "fp32")
    print(json.dumps(times), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--family", choices=FAMILIES, default="genre-cgan")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="run the sides in turn this often")
    ap.add_argument("--impls", default=",".join(IMPLS), help="which sides (plain is required)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.family, args.child[0], args.child[1], args.steps, args.warmup)
        return
    from train_quality import bf16_note

    from posterforge_genre_cgan.demo_data import make_demo_posters

    impls = [i for i in IMPLS if i in args.impls.split(",")]
    if "plain" not in impls or len(impls) < 2:
        raise SystemExit("--impls needs plain and at least one of ours, ours-bf16")
    print(f"# {bf16_note()}", flush=True)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pf-bench-gen-") as tmp:
        make_demo_posters(tmp, per_genre=8, seed=0)
        per_round: dict[str, list[float]] = {i: [] for i in impls}  # median s/step each round
        rss = dict.fromkeys(impls, 0.0)
        for r in range(args.rounds):
            order = impls if r % 2 == 0 else impls[::-1]  # which side goes first alternates
            for impl in order:
                cmd = [sys.executable, __file__, "--family", args.family, "--steps",
                       str(args.steps), "--warmup", str(args.warmup), "--child", impl, tmp]
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
                out = proc.stdout.read() if proc.stdout else ""
                _, status, usage = os.wait4(proc.pid, 0)
                if status != 0:
                    raise SystemExit(f"{impl} failed ({status})")
                times = sorted(json.loads(out.strip().splitlines()[-1]))
                per_round[impl].append(times[len(times) // 2])
                rss[impl] = max(rss[impl], usage.ru_maxrss / 1024)
                print(f"  round {r + 1} {impl}: {per_round[impl][-1]:.3f} s/step", flush=True)
    load = f"load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}"

    def med(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    for impl in impls:
        print(f"{impl:>9}: median {med(per_round[impl]):.3f} s/step, peak RSS {rss[impl]:.0f} MB")
    for impl in impls[1:]:
        ratios = [p / o for p, o in zip(per_round["plain"], per_round[impl], strict=True)]
        print(
            f"ratio plain/{impl}: x{med(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] over "
            f"{args.rounds} rounds of {args.steps} steps ({args.family}, default recipe; {load})"
        )


if __name__ == "__main__":
    main()
