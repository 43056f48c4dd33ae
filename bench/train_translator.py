"""Benchmark: one CycleGAN training step, posterforge's against a plain PyTorch step.

Both use the same networks (ResNet-9 generators, ngf 64; 70x70 PatchGAN discriminators, ndf 64),
the same LSGAN + cycle + identity losses and image pools, batch 1, 256x256 crops from the same
synthetic frames, fp32 on the CPU. The plain step is what a user would write from the paper
(PIL load + crop per image, eager, default Adam, contiguous tensors, loss.item() per step);
ours is ``CycleGANTask.step`` with its default recipe (``fast_cpu``: Winograd residual convs
forward and backward, channels-last head conv; see docs/training.md) fed by the streaming data
loader; ``ours-bf16`` is the same with the recipe's ``precision = "bf16"`` (forward
passes autocast to bfloat16). Each runs in its own process; ``--rounds N`` runs the three in turn
N times, so that a change in machine load hits every side.

    .venv/bin/python bench/train_translator.py [--steps 6] [--warmup 2] [--size 256] [--rounds 1]

Prints the median seconds per step (after warm-up), the ratios (plain / ours; > 1 means ours is
faster) and the peak RSS of each side, after a line saying whether this CPU has native bf16
convolutions (without them, AVX2 only, autocast's bf16 convs take ATen's slow path and ours-bf16
is several times slower than fp32). bf16's training *quality* against fp32 is measured by
bench/train_quality.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def plain(folder_a: Path, folder_b: Path, steps: int, warmup: int, size: int) -> list[float]:
    import random

    import torch
    import torchvision.transforms.functional as TF
    from PIL import Image

    from posterforge_cyclegan import losses
    from posterforge_cyclegan.discriminator import PatchDiscriminator
    from posterforge_cyclegan.network import ResnetGenerator
    from posterforge_cyclegan.pool import ImagePool

    torch.manual_seed(0)
    g_ab, g_ba = ResnetGenerator(), ResnetGenerator()
    d_a, d_b = PatchDiscriminator(), PatchDiscriminator()
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], 2e-4, betas=(0.5, 0.999))
    pool_a, pool_b = ImagePool(50), ImagePool(50)
    files_a, files_b = sorted(folder_a.iterdir()), sorted(folder_b.iterdir())

    def load(path: Path) -> torch.Tensor:
        im = Image.open(path).convert("RGB").resize((size + 30, size + 30), Image.BICUBIC)
        x, y = random.randint(0, 30), random.randint(0, 30)
        return TF.to_tensor(im.crop((x, y, x + size, y + size))).unsqueeze(0) * 2 - 1

    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        a, b = load(files_a[i % len(files_a)]), load(files_b[i % len(files_b)])
        fake_b, fake_a = g_ab(a), g_ba(b)
        loss_g = (
            losses.g_lsgan(d_b(fake_b))
            + losses.g_lsgan(d_a(fake_a))
            + 10 * (losses.cycle(g_ba(fake_b), a) + losses.cycle(g_ab(fake_a), b))
            + 5 * (losses.identity(g_ab(b), b) + losses.identity(g_ba(a), a))
        )
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        fb, fa = pool_b.query(fake_b.detach()), pool_a.query(fake_a.detach())
        loss_d = losses.d_lsgan(d_b(b), d_b(fb)) + losses.d_lsgan(d_a(a), d_a(fa))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g.item(), loss_d.item()  # what a training loop prints
        times.append(time.perf_counter() - start)
    return times[warmup:]


def ours(
    folder_a: Path, folder_b: Path, steps: int, warmup: int, size: int, precision: str = "fp32"
) -> list[float]:
    import torch

    from posterforge_cyclegan.training import CycleGANTask, UnpairedStream

    torch.manual_seed(0)
    recipe = {"size": size, "load_size": size + 30, "batch_size": 1, "identity_weight": 5.0}
    recipe["precision"] = precision
    task = CycleGANTask(recipe, device="cpu", seed=0)
    data = UnpairedStream(folder_a, folder_b, batch_size=1, load_size=size + 30, seed=0)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        task.step(next(data), i)
        times.append(time.perf_counter() - start)
    return times[warmup:]


IMPLS = ("plain", "ours", "ours-bf16")


def child(impl: str, a: str, b: str, steps: int, warmup: int, size: int) -> None:
    if impl == "plain":
        times = plain(Path(a), Path(b), steps, warmup, size)
    else:
        precision = "bf16" if impl == "ours-bf16" else "fp32"
        times = ours(Path(a), Path(b), steps, warmup, size, precision)
    print(json.dumps(times), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=1, help="run the sides in turn this often")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, a, b = args.child
        child(impl, a, b, args.steps, args.warmup, args.size)
        return
    from train_quality import bf16_note
    from translate import make_frames


    print(f"# {bf16_note()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="pf-bench-train-") as tmp:
        a = make_frames(Path(tmp) / "a", 8, args.size + 64, args.size + 32)
        b = make_frames(Path(tmp) / "b", 8, args.size + 32, args.size + 64)
        steps_s: dict[str, list[float]] = {impl: [] for impl in IMPLS}
        rss: dict[str, float] = {impl: 0.0 for impl in IMPLS}
        for impl in [i for _ in range(args.rounds) for i in IMPLS]:
            cmd = [
                sys.executable,
                __file__,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--size",
                str(args.size),
                "--child",
                impl,
                str(a),
                str(b),
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
            out = proc.stdout.read() if proc.stdout else ""
            _, status, usage = os.wait4(proc.pid, 0)
            if status != 0:
                raise SystemExit(f"{impl} failed ({status})")
            steps_s[impl] += json.loads(out.strip().splitlines()[-1])
            rss[impl] = max(rss[impl], usage.ru_maxrss / 1024)
        median = {impl: sorted(t)[len(t) // 2] for impl, t in steps_s.items()}
        for impl in IMPLS:
            print(
                f"{impl:>9}: median {median[impl]:.2f} s/step over {len(steps_s[impl])} steps "
                f"({args.rounds} x {args.steps}, after {args.warmup} warm-up each), "
                f"peak RSS {rss[impl]:.0f} MB",
                flush=True,
            )
        for impl in IMPLS[1:]:
            print(
                f"ratio plain/{impl}: x{median['plain'] / median[impl]:.2f} "
                f"({args.size}x{args.size}, batch 1, resnet_9blocks)"
            )


if __name__ == "__main__":
    main()
