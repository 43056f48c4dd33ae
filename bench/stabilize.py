"""What ``translate --stabilize`` does to a still shot with sensor noise (issue 26), measured on the
network alone: random CycleGAN generators (fixed seed) of two sizes, a 64x48 still picture with
Gaussian noise per frame, frames run one at a time. For plain instance norm and each strength,
prints the mean absolute change between consecutive output frames (grey levels; the same of 8x8
block means, the slow part of flicker) and the PSNR of the stabilised frames against the plain
ones. No timing: these are operation-count-free quality numbers, the same on any machine.

    python bench/stabilize.py
    python bench/stabilize.py --sigma 16 --frames 48 --strengths 0.3 0.5 0.9
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.network import ResnetGenerator, UnitRange


def still(frames: int, sigma: float) -> torch.Tensor:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([x * 3, y * 5, (x + y) * 2]).astype(np.float32)
    noisy = np.clip(base + rng.normal(0, sigma, (frames, *base.shape)), 0, 255) / 255
    return torch.from_numpy(noisy.astype(np.float32))


def change(frames: torch.Tensor) -> tuple[float, float]:
    grey = frames * 255
    blocks = F.avg_pool2d(grey, 8)
    pixels = float((grey[1:] - grey[:-1]).abs().mean())
    return pixels, float((blocks[1:] - blocks[:-1]).abs().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--sigma", type=float, default=8.0)
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.5, 0.9])
    args = ap.parse_args()
    x = still(args.frames, args.sigma)
    print(f"input: change {change(x)[0]:.3f}, 8x8 blocks {change(x)[1]:.3f}")
    print("| net | strength | change | 8x8 blocks | PSNR vs plain |\n|---|---|---|---|---|")
    for ngf, blocks in ((4, 1), (16, 3)):
        torch.manual_seed(0)
        net = UnitRange(ResnetGenerator(ResnetConfig(ngf=ngf, n_blocks=blocks, affine=True)), 4)
        net = net.eval()
        with torch.inference_mode():
            plain = torch.cat([net(x[i : i + 1]) for i in range(len(x))])
            print(f"| ngf {ngf}, {blocks} block(s) | off | %.3f | %.3f | |" % change(plain))
            for s in args.strengths:
                shared = net.stabilized(s)
                out = torch.cat([shared(x[i : i + 1]) for i in range(len(x))])
                mse = float(((out - plain) ** 2).mean())
                psnr = 10 * np.log10(1 / mse) if mse else float("inf")
                print(f"| | {s} | %.3f | %.3f | {psnr:.1f} dB |" % change(out))


if __name__ == "__main__":
    main()
