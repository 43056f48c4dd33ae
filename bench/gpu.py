"""The GPU check: translate speed at 256x256 and 1280x720 in fp16 and bf16, and how much of the
GPU's convolution throughput it reaches. One script to run once on a lent GPU machine:

    .venv/bin/python bench/gpu.py                      # on a CUDA machine, ~5 min
    .venv/bin/python bench/gpu.py --device cpu --quick # does it run at all (no GPU needed)

For each size, precision and ``--backends`` value (default ``torch,auto``: the engine's choice,
which on CUDA is torch, named with its reason) it reports:
- ``engine img/s``: frames through the Engine (the runner ``translate`` uses: uint8 in, uint8
  out, host to device and back), in batches of ``--batch`` (default: the CLI's auto batch), after
  warm-up, timed with a device sync at the end of each batch;
- ``model TFLOP/s``: the network's convolution FLOPs per frame (counted by
  ``torch.utils.flop_counter`` at that size) times the engine's frames/s;
- ``of peak``: that divided by the peak measured in the same run for the same dtype: a large
  3x3 convolution (256 -> 256 channels, channels-last, cuDNN autotuned) timed alone, which is
  what this device's convolutions can do at best;
- ``cli img/s``: ``posterforge translate --backend B`` on ``--files`` PNG frames, whole process
  (start-up, decode, encode, writes included), from its own summary line;
- ``path``: the path the engine took and why (its backend line).

Nothing is downloaded; the style is the embedded ``vintage`` model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
SIZES = {"256x256": (256, 256), "1280x720": (1280, 720)}


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def conv_peak(device, dtype, quick: bool) -> float:
    """TFLOP/s of a large 3x3 convolution alone: the reference for "of peak"."""
    import torch
    import torch.nn.functional as F

    torch.backends.cudnn.benchmark = True
    n, c, hw = (2, 64, 32) if quick else (64, 256, 64)
    x = torch.randn(n, c, hw, hw, device=device, dtype=dtype)
    w = torch.randn(c, c, 3, 3, device=device, dtype=dtype)
    x, w = (t.contiguous(memory_format=torch.channels_last) for t in (x, w))
    flops = 2 * n * c * c * 9 * hw * hw
    with torch.inference_mode():
        for _ in range(3):
            F.conv2d(x, w, padding=1)
        sync(device)
        reps = 2 if quick else 50
        start = time.perf_counter()
        for _ in range(reps):
            F.conv2d(x, w, padding=1)
        sync(device)
    return flops * reps / (time.perf_counter() - start) / 1e12


def model_flops(hw: tuple[int, int]) -> float:
    """FLOPs of one frame's forward at ``hw`` (W, H; multiples of 4, so unpadded): the plain
    network (not the CPU's Winograd variant, which does fewer multiplies), counted on the meta
    device, so nothing is computed."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from posterforge.catalog import resolve_style
    from posterforge.plugins import get_host
    from posterforge.store import Store
    from posterforge.weights import build_checked

    resolved = resolve_style("vintage", get_host(), Store())
    net = build_checked(resolved.translator, resolved.weights).to("meta")
    w, h = hw
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        net(torch.empty(1, 3, h, w, device="meta"))
    return float(counter.get_total_flops())


def engine_rate(engine, hw: tuple[int, int], batch: int, quick: bool) -> float:
    import torch

    w, h = hw
    frames = torch.randint(0, 256, (batch, h, w, 3), dtype=torch.uint8)
    for _ in range(1 if quick else 3):  # warm-up: cuDNN autotuning, compile if any
        engine(frames)
    sync(engine.device)
    reps = 1 if quick else max(3, 256 // batch)
    start = time.perf_counter()
    for _ in range(reps):
        engine(frames)
        sync(engine.device)
    return batch * reps / (time.perf_counter() - start)


def cli_rate(folder: Path, out: Path, device: str, precision: str, backend: str) -> float | None:
    cmd = [sys.executable, "-m", "posterforge", "translate", str(folder), "--style", "vintage"]
    cmd += ["--out", str(out), "--device", device, "--precision", precision, "--overwrite"]
    cmd += ["--backend", backend]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        print(f"  cli failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    found = re.search(r"\(([\d.]+) images/s\)", proc.stderr)
    return float(found[1]) if found else None


def measure_row(args, device, size: str, hw: tuple[int, int], precision: str, backend: str,
                folder: Path, tmp: str) -> dict:  # fmt: skip
    """One size, precision and ``--backend``: the engine's rate, FLOPs, the conv peak, the CLI's
    rate, and the path the engine took (``backend torch (only torch on cuda)``, ...)."""
    import torch

    from posterforge.translation import load_engine

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    engine = load_engine("vintage", device=args.device, precision=precision, backend=backend)
    batch = args.batch or (1 if device.type == "cpu" else (64 if hw[0] <= 256 else 8))
    rate = engine_rate(engine, hw, batch, args.quick)
    path = engine.choice.line()
    flops = model_flops(hw)
    peak = conv_peak(device, dtype, args.quick)
    achieved = flops * rate / 1e12
    out = Path(tmp) / f"out-{size}-{precision}-{backend}"
    cli = cli_rate(folder, out, args.device, precision, backend)
    row = dict(size=size, precision=precision, backend=backend, path=path, batch=batch)
    row.update(engine_img_s=rate, gflop_per_frame=flops / 1e9, model_tflops=achieved)
    row.update(conv_peak_tflops=peak, of_peak=achieved / peak, cli_img_s=cli)
    print(
        f"{size:>9} {precision} --backend {backend} ({path}): engine {rate:8.1f} img/s (batch "
        f"{batch}), {flops / 1e9:.1f} GFLOP/frame -> {achieved:.2f} TFLOP/s = "
        f"{100 * achieved / peak:.0f}% of a lone conv's {peak:.1f} TFLOP/s; "
        f"cli {cli if cli is None else f'{cli:.1f}'} img/s",
        flush=True,
    )
    del engine
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", default="fp16,bf16")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--backends", default="torch,auto",
                    help="--backend values to run each size and precision with (torch, auto, "
                    "openvino; on CUDA the engine takes torch and says why)")  # fmt: skip
    ap.add_argument("--batch", type=int, default=0, help="0: the CLI's automatic batch size")
    ap.add_argument("--files", type=int, default=64, help="frames on disk for the CLI run")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and counts: a smoke run")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    import torch
    from translate import make_frames

    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# {name}, torch {torch.__version__}, load {os.getloadavg()[0]:.1f}", flush=True)
    sizes = {"64x64": (64, 64)} if args.quick else {s: SIZES[s] for s in args.sizes.split(",")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="pf-bench-gpu-") as tmp:
        for size, hw in sizes.items():
            files = 2 if args.quick else args.files
            folder = make_frames(Path(tmp) / size, files, *hw)
            for precision in args.precisions.split(","):
                if device.type == "cpu" and precision == "fp16":
                    continue  # no fp16 autocast worth timing on a CPU
                for backend in args.backends.split(","):
                    rows.append(measure_row(args, device, size, hw, precision, backend, folder,
                                            tmp))  # fmt: skip
    print("\n| size | precision | --backend | path | batch | engine img/s | TFLOP/s | "
          "of conv peak | cli img/s |")  # fmt: skip
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        cli = "-" if r["cli_img_s"] is None else f"{r['cli_img_s']:.1f}"
        print(f"| {r['size']} | {r['precision']} | {r['backend']} | {r['path']} | {r['batch']} | "
              f"{r['engine_img_s']:.1f} | {r['model_tflops']:.2f} | {100 * r['of_peak']:.0f}% | "
              f"{cli} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
