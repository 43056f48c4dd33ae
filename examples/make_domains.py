"""Two folders of made-up training images for a first translator run (``make demo-train``):
domain ``a`` warm and bright, domain ``b`` cool and dark, each with its own stripes, so that a
tiny CycleGAN learns a visible colour change in a minute.

    python examples/make_domains.py OUT [--n 24] [--size 48]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from posterforge.images import encode_atomic


def make(out: Path, n: int = 24, size: int = 48, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for domain, base, shift in (("a", (210, 150, 90), 0.0), ("b", (60, 90, 150), 1.5)):
        for i in range(n):
            stripes = 35 * np.sin((xx + (yy if domain == "b" else 0) + 3 * i) / 5.0 + shift)
            rgb = np.array(base, dtype=float) + stripes[..., None]
            rgb += rng.integers(-20, 20, (size, size, 3))
            encode_atomic(np.clip(rgb, 0, 255).astype(np.uint8), out / domain / f"{i:02d}.png")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--size", type=int, default=48)
    args = parser.parse_args()
    print(make(args.out, args.n, args.size))
