"""Steady-state forward passes of the vintage ResNet: posterforge's chosen path against plain torch
eager, ONNX Runtime and OpenVINO, fp32 and bf16, at 256x256 and 1280x720 (issue 21).

Each side is set up once (converted, compiled, warmed by one pass), then the sides run in turn,
one pass each per round, which goes first rotating every round, so a burst of load elsewhere
hits them alike. Prints the load average before and after and at the end of each round (with that
round's seconds per side), one line per side with its median and min-max seconds per frame, then
a markdown table with ratios to plain torch and to OpenVINO at the same precision (the target:
posterforge at least 1.0x OpenVINO). posterforge's side calibrates in a fresh home, as a first
run on this machine would (``--home DIR`` to use a home's cached decisions instead), and prints
the path chosen with the timings it was chosen by. ``--busy N`` keeps N spinning processes
running meanwhile. Ratios from one run compare; absolute times across runs do not.

    python bench/backends.py                       # both sizes, fp32 and bf16, 3 rounds
    python bench/backends.py --sizes 256x256 --precisions fp32 --rounds 5
    python bench/backends.py --busy 2              # under load

ONNX Runtime runs the file ``posterforge weights export vintage --size WxH`` writes, fp32 only
(its x86 CPU provider has no bf16 convolutions; the bf16 rows say so).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch

Side = Callable[[torch.Tensor], object]
NAMES = ("posterforge", "plain torch", "openvino", "onnxruntime")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def plain_torch(precision: str) -> Side:
    """vintagify's generator, eager, ``no_grad`` (autocast for bf16): what a user writes."""
    from vintagify.generator import ResnetGenerator

    from posterforge_cyclegan import locate_vintagify

    net = ResnetGenerator()
    net.load_state_dict(torch.load(locate_vintagify(), map_location="cpu", weights_only=True))
    net.eval()

    def run(x: torch.Tensor) -> object:
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            return net(x * 2 - 1)

    return run


def posterforge_side(precision: str, hw: tuple[int, int]) -> tuple[Side, str]:
    """posterforge's engine with ``--backend auto`` (calibrated first, as a first run would; a
    calibration cached in the home is kept). Prints the calibration's timings: why the path."""
    from posterforge.translation import load_engine

    engine = load_engine(
        "vintage", device="cpu", precision=precision, compile="off", backend="auto"
    )
    engine.expect(1, hw, 1)
    engine.decide_paths()
    for why in engine.choice.calibrations() or ["none: " + engine.choice.line()]:
        print(f"  calibration {why}", flush=True)
    return engine.forward, engine.choice.line()


def openvino_side(precision: str, hw: tuple[int, int]) -> Side | None:
    """OpenVINO on the module as built, LATENCY hint, static shape: a plain OpenVINO loop."""
    try:
        import openvino as ov
    except ImportError:
        return None
    from posterforge.translation import _resolve

    module = _resolve("vintage", None).build().eval()
    x = torch.zeros(1, 3, *hw)
    model = ov.convert_model(module, example_input=x, input=[list(x.shape)])
    hint = {"fp32": "f32", "bf16": "bf16"}[precision]
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint}
    compiled = ov.Core().compile_model(model, "CPU", config)
    return lambda x: compiled(x.numpy())[0]


ORT_NO_BF16 = "n/a: ONNX Runtime's CPU provider has no bf16 convolutions on x86"


def onnxruntime_side(precision: str, hw: tuple[int, int]) -> Side | None:
    """ONNX Runtime's CPU provider on the file ``posterforge weights export`` writes (static
    size, checked against torch there), as many threads as torch. fp32 only: see
    :data:`ORT_NO_BF16`."""
    if precision != "fp32":
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from posterforge.api import export_weights

    path = os.path.join(tempfile.mkdtemp(), "vintage.onnx")
    export_weights("vintage", path, size=f"{hw[1]}x{hw[0]}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x.numpy()})


def spin() -> None:
    while True:
        pass


def measure(sides: dict[str, Side], hw: tuple[int, int], rounds: int) -> dict[str, list[float]]:
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0))
    for run in sides.values():
        run(x)  # warm: first-touch memory, lazy initialisation
    names, times = list(sides), {name: [] for name in sides}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            sides[name](x)
            times[name].append(time.perf_counter() - start)
        took = ", ".join(f"{name} {times[name][-1]:.3f}" for name in names)
        print(f"  round {r + 1}/{rounds}: load {load()}; {took}", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x256,1280x720")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes meanwhile")
    parser.add_argument("--home", help="posterforge home to calibrate in (default: a fresh one)")
    args = parser.parse_args()
    os.environ["POSTERFORGE_HOME"] = args.home or tempfile.mkdtemp(prefix="pf-bench-home-")
    print(f"posterforge home: {os.environ['POSTERFORGE_HOME']}")
    print(f"load before: {load()}; torch threads {torch.get_num_threads()}; busy {args.busy}")
    busy = [mp.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for p in busy:
        p.start()
    rows = []
    try:
        for size in args.sizes.split(","):
            w, h = map(int, size.split("x"))
            for precision in args.precisions.split(","):
                ours, line = posterforge_side(precision, (h, w))
                sides: dict[str, Side] = {"posterforge": ours}
                sides["plain torch"] = plain_torch(precision)
                for name, make in (("openvino", openvino_side), ("onnxruntime", onnxruntime_side)):
                    if (side := make(precision, (h, w))) is not None:
                        sides[name] = side
                times = measure(sides, (h, w), args.rounds)
                med = {k: statistics.median(v) for k, v in times.items()}
                for name, t in times.items():
                    print(f"{size} {precision} {name}: median {med[name]:.3f} s/frame "
                          f"[{min(t):.3f}-{max(t):.3f}]" + (f" ({line})" if name == "posterforge"
                                                            else ""), flush=True)  # fmt: skip
                if precision != "fp32":
                    print(f"{size} {precision} onnxruntime: {ORT_NO_BF16}", flush=True)
                rows.append((size, precision, med, line))
    finally:
        for p in busy:
            p.terminate()
    print(f"load after: {load()}\n")
    print("| size | precision | posterforge s | path | plain torch s | OpenVINO s | ONNX Runtime s "
          "| plain/ours | OpenVINO/ours (target >= 1.0) |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for size, precision, med, line in rows:
        ours = med["posterforge"]
        cell = {name: f"{med[name]:.3f}" if name in med else "-" for name in NAMES}
        if precision != "fp32":
            cell["onnxruntime"] = ORT_NO_BF16
        ov = f"{med['openvino'] / ours:.2f}" if "openvino" in med else "-"
        print(f"| {size} | {precision} | {ours:.3f} | {line} | {cell['plain torch']} | "
              f"{cell['openvino']} | {cell['onnxruntime']} | {med['plain torch'] / ours:.2f} | "
              f"{ov} |")  # fmt: skip


if __name__ == "__main__":
    main()
