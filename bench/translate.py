"""Benchmark: `posterforge translate --style vintage` against a plain PyTorch loop.

Both run as separate processes over the same directory of synthetic frames, in the same run of
this script, and both print a line per finished image; from those lines we take:

- end-to-end images/s (start-up included) for N frames and for a short job;
- steady-state images/s over the second half of the frames (warm-up, model loading and, for
  posterforge, compilation excluded);
- peak RSS of each process (os.wait4), for N and for 10N frames (it must not grow with N).

    .venv/bin/python bench/translate.py                       # defaults below
    .venv/bin/python bench/translate.py --sizes 256x256 --n 64 --short-n 16 --rss-n 16

Ratios > 1 mean posterforge is faster. Timings are noisy on shared machines: compare ratios
from one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass
class Run:
    n: int
    seconds: float
    steady_ips: float
    peak_rss_mb: float

    @property
    def ips(self) -> float:
        return self.n / self.seconds


def make_frames(folder: Path, n: int, w: int, h: int) -> Path:
    """Smooth, photo-like synthetic frames (moving gradients and blobs, plus sensor noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        t = i / max(n, 1)
        r = 128 + 100 * np.sin(xx / w * 6.28 + t * 6.28)
        g = 128 + 100 * np.cos(yy / h * 6.28 - t * 3.14)
        b = 255 * ((xx + yy) / (w + h))
        img = np.stack([r, g, b], -1) + rng.normal(0, 6, (h, w, 3))
        cx, cy = int(w * (0.2 + 0.6 * t)), h // 2
        img[max(0, cy - h // 6) : cy + h // 6, max(0, cx - w // 8) : cx + w // 8] = (230, 60, 40)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"frame{i:05d}.png")
    return folder


def timed(cmd: list[str], expect: int, env: dict[str, str]) -> Run:
    """Run ``cmd``; time each stdout line (one per image); peak RSS from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    stamps = []
    assert proc.stdout is not None
    for _line in proc.stdout:
        stamps.append(time.perf_counter())
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.perf_counter()
    if status != 0 or len(stamps) != expect:
        raise SystemExit(f"{cmd[:4]}... failed: status {status}, {len(stamps)}/{expect} images")
    # Second half only; outputs of one batch arrive together, so this needs several batches.
    half = stamps[len(stamps) // 2 - 1 :]
    steady = (len(half) - 1) / (half[-1] - half[0]) if len(stamps) >= 16 else float("nan")
    return Run(expect, end - start, steady, usage.ru_maxrss / 1024)


def ours(src: Path, out: Path, env: dict[str, str], extra: list[str]) -> list[str]:
    return [
        PY,
        "-m",
        "posterforge",
        "translate",
        str(src),
        "-o",
        str(out),
        "--style",
        "vintage",
        "--device",
        "cpu",
        "-q",
        "--overwrite",
        *extra,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="256x256,1280x720", help="comma list of WxH")
    ap.add_argument("--n", default="64,10", help="frames per size (comma list, one per size)")
    ap.add_argument("--short-n", type=int, default=16, help="short job (first size); 0 skips")
    ap.add_argument("--rss-n", type=int, default=16, help="RSS for N vs 10N; 0 skips")
    ap.add_argument("--batch-size", type=int, default=None, help="default: posterforge's")
    ap.add_argument("--extra", default="", help="extra options for posterforge translate")
    args = ap.parse_args()

    sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    ns = [int(x) for x in args.n.split(",")]
    ns += [ns[-1]] * (len(sizes) - len(ns))
    extra = [
        *(["--batch-size", str(args.batch_size)] if args.batch_size else []),
        *args.extra.split(),
    ]
    home = os.environ.get("POSTERFORGE_HOME") or tempfile.mkdtemp(prefix="pf-bench-home-")
    env = {**os.environ, "POSTERFORGE_HOME": home}
    # Import the vintage weights once so that no run pays for that.
    subprocess.run(
        [PY, "-m", "posterforge", "weights", "path", "vintage"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    print(f"torch threads: default; cpu count {os.cpu_count()}; posterforge options: {extra}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pf-bench-") as tmp:
        t = Path(tmp)
        jobs = [(f"{w}x{h}", n, w, h) for (w, h), n in zip(sizes, ns, strict=True)]
        if args.short_n:
            w, h = sizes[0]
            jobs.append((f"{w}x{h} short", args.short_n, w, h))
        for label, n, w, h in jobs:
            src = make_frames(t / f"in-{label.replace(' ', '-')}", n, w, h)
            base = timed([PY, "bench/plain_loop.py", str(src), str(t / "plain")], n, env)
            mine = timed(ours(src, t / "ours", env, extra), n, env)
            rows.append((label, n, base, mine))
            print(
                f"{label:>16} N={n:<4} plain {base.ips:6.3f} img/s  ours {mine.ips:6.3f} img/s"
                f"  end-to-end x{mine.ips / base.ips:4.2f}  steady plain {base.steady_ips:6.3f}"
                f" ours {mine.steady_ips:6.3f} x{mine.steady_ips / base.steady_ips:4.2f}"
                f"  peak RSS plain {base.peak_rss_mb:5.0f} MB ours {mine.peak_rss_mb:5.0f} MB",
                flush=True,
            )
        if args.rss_n:
            w, h = sizes[0]
            for n in (args.rss_n, 10 * args.rss_n):
                src = make_frames(t / f"rss-{n}", n, w, h)
                r = timed(ours(src, t / f"rss-out-{n}", env, [*extra, "--compile", "off"]), n, env)
                print(
                    f"{'RSS ' + str(w) + 'x' + str(h):>16} N={n:<4} ours peak RSS "
                    f"{r.peak_rss_mb:5.0f} MB ({r.ips:.3f} img/s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
