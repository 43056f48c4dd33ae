"""Benchmark: `posterforge generate -n N` against a plain PyTorch loop (batch 1).

Both sample the same generator (the shipped ``posters-demo`` unless ``--model``), for one genre,
and write PNG files, each in its own process, in the same run of this script:

- plain: what a user would write: for each poster, ``torch.randn(1, z_dim)``, one forward under
  ``torch.no_grad()``, ``to_pil_image(...).save(...)``;
- ours: the ``posterforge generate`` command (batched, inference mode, encoding on worker threads
  overlapped with the next batch).

Timed from process start to exit (start-up included) and over the generation alone (from the
first to the last written poster). Prints posters/s and the ratio (ours / plain; > 1 means
posterforge is faster).

    .venv/bin/python bench/generate.py [--n 1024] [--model posters-demo] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable

PLAIN = r"""
import sys
from pathlib import Path
import torch
import torchvision.transforms.functional as TF
from posterforge.catalog import resolve_generator
from posterforge.plugins import get_host
from posterforge.store import Store
from posterforge.weights import load_weights

model, genre, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
cls, path = resolve_generator(model, get_host(), Store())
net = cls.build(load_weights(path)).eval()
y = net.conditions(genre).reshape(1, -1)  # the family's own parsing of the genre
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
for i in range(n):
    with torch.no_grad():
        x = net.sample(torch.randn(1, net.z_dim), y)
    TF.to_pil_image(x[0]).save(out / f"{i:05d}.png")
"""


def timed(cmd: list[str], out_dir: Path) -> tuple[float, float, int]:
    """(wall seconds, seconds from the first poster to the last, posters written)."""
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[:4]} failed:\n{proc.stderr}")
    files = sorted(out_dir.glob("*.png"), key=lambda p: p.stat().st_mtime)
    steady = files[-1].stat().st_mtime - files[0].stat().st_mtime
    return wall, steady, len(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--model", default="posters-demo")
    ap.add_argument("--genre", default="horror")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain_out, ours_out = tmp / "plain", tmp / "ours"
        plain = timed([PY, "-c", PLAIN, args.model, args.genre, str(args.n), str(plain_out)],
                      plain_out)  # fmt: skip
        ours = timed(
            [PY, "-m", "posterforge", "generate", "--genre", args.genre, "-n", str(args.n),
             "--model", args.model, "--out", str(ours_out), "--batch-size",
             str(args.batch_size), "--device", "cpu", "-q"],
            ours_out,
        )  # fmt: skip
    print(f"generate -n {args.n} ({args.model}, {args.genre}), CPU, threads {os.cpu_count()}")
    print(f"{'':8}{'wall s':>9}{'posters/s':>11}{'gen s':>9}{'posters/s':>11}")
    for name, (wall, steady, count) in (("plain", plain), ("ours", ours)):
        assert count == args.n, f"{name} wrote {count} posters, not {args.n}"
        print(
            f"{name:8}{wall:9.2f}{count / wall:11.1f}{steady:9.2f}{count / max(steady, 1e-9):11.1f}"
        )
    print(f"ratio (ours / plain): end-to-end {plain[0] / ours[0]:.2f}x, "
          f"generation only {plain[1] / max(ours[1], 1e-9):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
