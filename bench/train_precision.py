"""Benchmark (issue 21, item 4): train-step seconds of fp32 against bf16 autocast for the three
shipped families, on their ``tiny`` recipes, interleaved.

Each run is ``posterforge train`` in its own process with ``--preset tiny``, a log line every step
(checkpoints and sample grids off) and ``--set precision='"fp32"'`` or ``'"bf16"'``; seconds per
step is the median gap between the ``time`` of consecutive ``log.jsonl`` lines from step 2 on
(the first step's start-up left out), as docs/training.md measures its table. The runs take
family by family and precision by precision in turn, ``--rounds`` times, so that a change in the
machine's load hits every side; each round's bf16/fp32 ratio is kept, and the median and range
of those ratios are printed with the 1-minute load average before and after.

Data: the synthetic demo posters (``posterforge_genre_cgan.demo_data``, 10 per genre) for the
genre cGAN and StyleGAN, and two folders of 24 random 96x128 images for CycleGAN, made once in
a temporary folder. Nothing is downloaded.

    .venv/bin/python bench/train_precision.py                      # 3 rounds, 30 steps
    .venv/bin/python bench/train_precision.py --families cyclegan --rounds 5 --steps 50

Training defaults are not changed by this script: it only reports. Run it on a quiet machine
(the 1-minute load average is printed: on a shared one the figures are not comparable).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]  # this checkout's posterforge, not another's
FAMILIES = ("cyclegan", "genre-cgan", "stylegan")
PRECISIONS = ("fp32", "bf16")


def native_bf16() -> str:
    """What this CPU offers (the same test as ``--precision auto``)."""
    import torch

    from posterforge.backends.precision import native_bf16

    return native_bf16(torch.device("cpu")) or "none (bf16 is emulated: expect it slower)"


def make_data(root: Path) -> dict[str, list[str]]:
    """The training inputs of each family, as command-line arguments."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
        for i in range(24):
            pixels = rng.integers(0, 256, (128, 96, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / side / f"{i:02d}.png")
    posters = root / "posters"
    subprocess.run(
        [sys.executable, "-m", "posterforge_genre_cgan.demo_data", "make", str(posters),
         "--per-genre", "10"],
        check=True, env=_env(), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    labelled = ["--data", str(posters), "--labels", str(posters / "labels.csv")]
    return {
        "cyclegan": ["translator", "--a", str(root / "A"), "--b", str(root / "B")],
        "genre-cgan": ["generator", *labelled],
        "stylegan": ["generator", "--arch", "stylegan", *labelled],
    }


def seconds_per_step(family: str, args: list[str], precision: str, steps: int, out: Path) -> float:
    """One ``posterforge train`` run into ``out`` (its model stored under the run's name in the
    bench's own home): the median seconds per step from step 2 on."""
    cmd = [
        sys.executable, "-m", "posterforge", "train", *args, "--name", out.name,
        "--preset", "tiny", "--max-steps", str(steps), "--device", "cpu", "--out", str(out),
        "--set", "train.log_every=1", "--set", "train.checkpoint_every=100000",
        "--set", "train.sample_every=100000", "--set", f'precision="{precision}"',
    ]  # fmt: skip
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{family} {precision}: train failed:\n{done.stderr[-2000:]}")
    times = [json.loads(line)["time"] for line in (out / "log.jsonl").read_text().splitlines()]
    gaps = [b - a for a, b in pairwise(times[1:])]  # from step 2 on
    if not gaps:
        sys.exit(f"{family} {precision}: too few logged steps; raise --steps")
    return statistics.median(gaps)


HOME: Path | None = None  # the bench's own posterforge home: the user's store is left alone


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if HOME is not None:
        env["POSTERFORGE_HOME"] = str(HOME)
    paths = [str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--steps", type=int, default=30, help="steps per run (default 30)")
    ap.add_argument("--json", type=Path, help="also write every run's seconds here")
    args = ap.parse_args()
    families = [f for f in args.families.split(",") if f]
    if unknown := sorted(set(families) - set(FAMILIES)):
        ap.error(f"unknown families {unknown}: use {', '.join(FAMILIES)}")
    print(f"# native bf16 on this CPU: {native_bf16()}")
    print(f"# {args.rounds} rounds of {args.steps} steps; load average {os.getloadavg()}")
    runs: dict[str, dict[str, list[float]]] = {f: {p: [] for p in PRECISIONS} for f in families}
    global HOME
    with tempfile.TemporaryDirectory(prefix="pf-train-precision-") as tmp:
        root = Path(tmp)
        HOME = root / "home"
        inputs = make_data(root / "data")
        for r in range(args.rounds):
            for family in families:
                for precision in PRECISIONS:
                    out = root / "runs" / f"{family}-{precision}-{r}"
                    secs = seconds_per_step(family, inputs[family], precision, args.steps, out)
                    runs[family][precision].append(secs)
                    print(f"round {r + 1} {family:10s} {precision}: {secs:.4f} s/step", flush=True)
    print(f"\n# load average at end {os.getloadavg()}")
    print(f"{'family':10s} {'fp32 s/step':>12s} {'bf16 s/step':>12s}  fp32/bf16 per round")
    for family, by in runs.items():
        ratios = [a / b for a, b in zip(by["fp32"], by["bf16"], strict=True)]
        fp32, bf16 = statistics.median(by["fp32"]), statistics.median(by["bf16"])
        print(
            f"{family:10s} {fp32:12.4f} {bf16:12.4f}  median {statistics.median(ratios):.2f}x"
            f" [{min(ratios):.2f}-{max(ratios):.2f}]"
            " (> 1: bf16 faster)"
        )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
