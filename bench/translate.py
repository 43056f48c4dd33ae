"""Benchmark (issue 15): whole `posterforge translate` processes against the plain PyTorch loop.

Each run is a whole process, start-up included, over the same synthetic frames:

    ours:  python -m posterforge translate IN --style vintage --out OUT --device cpu
    plain: python bench/plain_loop.py IN OUT

The two sides alternate over --rounds rounds (ours, plain; then plain, ours; ...), so slow drift
in the machine's load hits both alike. Per configuration it reports each side's median wall time,
the median of the per-round ratios plain/ours (> 1: we are faster) with their min-max spread,
each side's peak RSS (os.wait4) and ours/plain, whether `--compile auto` compiled (ours' summary
line on stderr, which is why ours runs without -q), and the 1-minute load average before and
after. Each target of the issue is printed beside its figure as PASS or MISS.

Configurations: every N of --n at every size of --sizes, and --hd-n frames at 1280x720; each with
a cold compile cache (a fresh POSTERFORGE_HOME per run) and a warm one (a POSTERFORGE_HOME
prepared once per size with `posterforge warmup`, outside the timed runs); each at every --busy
level K (K background processes spinning a core each during the runs). Every home holds the
vintage weights already (imported once, hard-linked), and every run writes a fresh output folder.

    .venv/bin/python bench/translate.py                  # the whole matrix: hours on 2 cores
    .venv/bin/python bench/translate.py --quick          # a tiny sanity run (~3 minutes)
    .venv/bin/python bench/translate.py --n 16,48,480 --rounds 1 --busy-n 16 --skip-720p

Timings on a shared machine are noisy: read the ratios and their spread, and the load column.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HD = (1280, 720)
RSS_TARGET = 1.2  # ours' peak RSS at most 1.2x plain's


@dataclass
class Config:
    n: int
    w: int
    h: int
    cache: str  # "cold" or "warm"
    busy: int

    @property
    def size(self) -> str:
        return f"{self.w}x{self.h}"

    @property
    def kind(self) -> str:
        return "720p" if (self.w, self.h) == HD else "sweep"

    def target(self) -> float:
        """The issue's speed target for the median plain/ours ratio."""
        if self.busy:
            return 1.0  # at every N, also while the machine is busy
        if self.kind == "720p":
            return 1.3
        if (self.w, self.h) == (256, 256):
            return {48: 1.25, 480: 1.4}.get(self.n, 1.0)
        return 1.0


@dataclass
class Run:
    seconds: float
    rss_mb: float
    compiled: str = ""  # ours: what the summary line said was compiled, "" when nothing


@dataclass
class Result:
    cfg: Config
    ours: list[Run] = field(default_factory=list)
    plain: list[Run] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)

    @property
    def ratios(self) -> list[float]:
        return [p.seconds / o.seconds for o, p in zip(self.ours, self.plain, strict=True)]


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


class Homes:
    """POSTERFORGE_HOMEs: a fresh one per cold run, one warmed-up one per size and style."""

    def __init__(self, tmp: Path, style: str) -> None:
        self.tmp, self.style, self.count, self.warm = tmp, style, 0, {}
        self.base = self.fresh()
        # Import the weights once; every home gets them hard-linked, so no run pays for that.
        env = environ(self.base)
        cmd = [PY, "-m", "posterforge", "weights", "path", style]
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)

    def fresh(self) -> Path:
        self.count += 1
        home = self.tmp / f"home{self.count}"
        if self.count > 1:
            shutil.copytree(self.base / "weights", home / "weights", copy_function=os.link)
        home.mkdir(exist_ok=True)
        return home

    def get(self, cfg: Config) -> Path:
        if cfg.cache == "cold":
            return self.fresh()
        if cfg.size not in self.warm:
            home = self.fresh()
            print(f"warming up {self.style} at {cfg.size} (not timed) ...", flush=True)
            cmd = [PY, "-m", "posterforge", "warmup", "--style", self.style, "--size", cfg.size]
            subprocess.run([*cmd, "--device", "cpu"], check=True, env=environ(home), cwd=ROOT)
            self.warm[cfg.size] = home
        return self.warm[cfg.size]


def environ(home: Path) -> dict[str, str]:
    env = {**os.environ, "POSTERFORGE_HOME": str(home)}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)  # the compile cache must be the home's
    return env


def run_side(cmd: list[str], n: int, env: dict[str, str], log: Path) -> Run:
    """Run one whole process; its wall time, peak RSS and (for ours) what it compiled."""
    with open(log, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env)
        assert proc.stdout is not None
        lines = sum(1 for _ in proc.stdout)  # one line per written image, on both sides
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    text = log.read_text()
    if status != 0 or lines != n:
        tail = "\n".join(text.splitlines()[-5:])
        raise SystemExit(f"{shlex.join(cmd)}: status {status}, {lines}/{n} images\n{tail}")
    found = re.search(r"; (compiled .*)$", text, re.M)
    return Run(seconds, usage.ru_maxrss / 1024, found.group(1) if found else "")


def interleave(cfg: Config, src: Path, homes: Homes, rounds: int, tmp: Path) -> Result:
    """``rounds`` rounds of ours and plain, alternating which goes first."""
    res = Result(cfg)
    warm = homes.get(cfg) if cfg.cache == "warm" else None  # warmed up before the load starts
    before = os.getloadavg()[0]
    busy = [subprocess.Popen([PY, "-c", "while True: pass"]) for _ in range(cfg.busy)]
    try:
        for r in range(rounds):
            for side in ("ours", "plain") if r % 2 == 0 else ("plain", "ours"):
                out = Path(tempfile.mkdtemp(prefix=f"out-{side}-", dir=tmp))
                env = environ((warm or homes.get(cfg)) if side == "ours" else homes.base)
                if side == "ours":
                    cmd = [PY, "-m", "posterforge", "translate", str(src), "--style", homes.style]
                    cmd += ["--out", str(out), "--device", "cpu"]
                else:
                    cmd = [PY, str(ROOT / "bench" / "plain_loop.py"), str(src), str(out)]
                getattr(res, side).append(run_side(cmd, cfg.n, env, out.with_suffix(".log")))
                shutil.rmtree(out)
        res.load = (before, os.getloadavg()[0])
    finally:
        for p in busy:
            p.kill()
            p.wait()
    return res


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def compiled(res: Result) -> str:
    notes = [o.compiled for o in res.ours if o.compiled]
    return f"{len(notes)}/{len(res.ours)} runs: {notes[0]}" if notes else "no"


def figures(res: Result) -> dict[str, str]:
    rs = res.ratios
    med = statistics.median(rs)
    rss_o = statistics.median(o.rss_mb for o in res.ours)
    rss_p = statistics.median(p.rss_mb for p in res.plain)
    goal = res.cfg.target()
    return {
        "plain s": f"{statistics.median(p.seconds for p in res.plain):.1f}",
        "ours s": f"{statistics.median(o.seconds for o in res.ours):.1f}",
        "ratio": f"{med:.2f} [{min(rs):.2f}-{max(rs):.2f}] (>= {goal} {mark(med >= goal)})",
        "rss plain": f"{rss_p:.0f}",
        "rss ours": f"{rss_o:.0f}",
        "rss ratio": f"{rss_o / rss_p:.2f} (<= {RSS_TARGET} {mark(rss_o / rss_p <= RSS_TARGET)})",
        "compiled": compiled(res),
        "load": f"{res.load[0]:.2f} -> {res.load[1]:.2f}",
    }


def report(results: list[Result]) -> None:
    head = ["config", "N", "size", "cache", "busy", "plain s", "ours s", "ratio median [min-max]",
            "RSS plain MB", "RSS ours MB", "RSS ratio", "compiled?", "load"]  # fmt: skip
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    misses = 0
    for res in results:
        f, c = figures(res), res.cfg
        misses += ("MISS" in f["ratio"]) + ("MISS" in f["rss ratio"])
        cells = [c.kind, c.n, c.size, c.cache, c.busy, *f.values()]
        print("| " + " | ".join(map(str, cells)) + " |")
    print(f"\n{misses} target(s) missed" if misses else "\nevery target met")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="256x256", help="comma list of WxH for the N sweep")
    ap.add_argument("--n", default="1,16,48,480", help="comma list of frame counts (the sweep)")
    ap.add_argument("--hd-n", type=int, default=6, help="frames of the 1280x720 configuration")
    hd = ap.add_mutually_exclusive_group()
    hd.add_argument("--skip-720p", action="store_true", help="no 1280x720 configuration")
    hd.add_argument("--only-720p", action="store_true", help="only the 1280x720 configuration")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of ours+plain per config")
    ap.add_argument("--busy", default="0,1,3", help="comma list: background busy processes")
    ap.add_argument("--busy-n", default=None, help="only these N at busy > 0 (default: all)")
    ap.add_argument("--cache", default="cold,warm", help="cold, warm or both")
    ap.add_argument("--style", default="vintage")
    ap.add_argument(
        "--quick", action="store_true", help="tiny sanity run: 64x64, N 1 and 4, busy 0 and 1"
    )
    if ap.parse_args().quick:  # new defaults; flags given explicitly still win
        ap.set_defaults(sizes="64x64", n="1,4", rounds=1, busy="0,1", busy_n="1", skip_720p=True)
    args = ap.parse_args()
    args.skip_720p = args.skip_720p and not args.only_720p  # --quick --only-720p

    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    caches = args.cache.split(",")
    busy_ns = ints(args.busy_n) if args.busy_n else None
    jobs = [] if args.only_720p else [(n, w, h) for w, h in sizes for n in ints(args.n)]
    jobs += [] if args.skip_720p else [(args.hd_n, *HD)]
    configs = [
        Config(n, w, h, cache, busy)
        for busy in ints(args.busy)
        for n, w, h in jobs
        if busy == 0 or busy_ns is None or n in busy_ns
        for cache in caches
    ]
    print("command:", shlex.join([PY, *sys.argv]))
    print(f"ours:  {PY} -m posterforge translate IN --style {args.style} --out OUT --device cpu")
    print(f"plain: {PY} bench/plain_loop.py IN OUT")
    print(f"cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; {len(configs)} configs")
    results = []
    with tempfile.TemporaryDirectory(prefix="pf-bench-") as tmp_name:
        tmp = Path(tmp_name)
        homes = Homes(tmp, args.style)
        frames: dict[tuple[int, int, int], Path] = {}
        for cfg in configs:
            key = (cfg.n, cfg.w, cfg.h)
            if key not in frames:
                frames[key] = make_frames(tmp / f"in-{cfg.n}-{cfg.size}", *key)
            res = interleave(cfg, frames[key], homes, args.rounds, tmp)
            results.append(res)
            f = figures(res)
            print(
                f"{cfg.kind} N={cfg.n} {cfg.size} {cfg.cache} busy={cfg.busy}: "
                f"plain {f['plain s']} s, ours {f['ours s']} s, ratio {f['ratio']}, "
                f"RSS {f['rss plain']} / {f['rss ours']} MB = {f['rss ratio']}, "
                f"compiled: {f['compiled']}, load {f['load']}",
                flush=True,
            )
    report(results)


if __name__ == "__main__":
    main()
