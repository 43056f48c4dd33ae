"""Benchmark: `posterforge translate clip.mp4` against extract frames -> translate folder ->
reassemble, on one synthetic clip (720p, 24 frames at 24 fps, with AAC audio by default).

Route "video": one process, `posterforge translate clip.mp4 --out out.mp4`.
Route "frames": three processes, as a user without video support would chain them: extract
every frame to PNG (PyAV, since the ffmpeg command may be absent), `posterforge translate
frames --out styled`, then encode the PNGs back into an MP4 at the clip's frame rate with
libx264 CRF 18 and copy the audio (PyAV again).

Both routes are timed whole (process start, model load and file I/O included), in interleaved
rounds (the order alternates each round) so that drifting machine load hits both alike. Printed:
frames/s per round, the median and spread (min-max) per route, the ratio of medians (> 1: the
video route is faster) and the load average before and after; then, beside the speed, the
flicker of each route's output (`posterforge eval-video`: the flow-warped error of the output
against the clip's own, and their ratio; 1 is none added), measured once on the last round's
output (it does not change between rounds). --no-flicker leaves it out (it needs the
video-metrics extra).

    .venv/bin/python bench/translate_video.py                         # 720p, 24 frames, 3 rounds
    .venv/bin/python bench/translate_video.py --frames 48 --rounds 5 -- --compile off
    .venv/bin/python bench/translate_video.py --size 320x180 --frames 4 --rounds 1 \\
        --style tiny.safetensors                                       # a quick check it works

Arguments after ``--`` go to both `posterforge translate` runs. Timings are noisy on shared
machines: compare the ratio from one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def make_clip(path: Path, frames: int, w: int, h: int, fps: int = 24) -> Path:
    """Smooth, photo-like moving frames with sensor noise, and a tone as audio."""
    import av

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "18"}
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(frames):
            t = i / max(frames, 1)
            r = 128 + 100 * np.sin(xx / w * 6.28 + t * 6.28)
            g = 128 + 100 * np.cos(yy / h * 6.28 - t * 3.14)
            b = 255 * ((xx + yy) / (w + h))
            img = np.stack([r, g, b], -1) + rng.normal(0, 6, (h, w, 3))
            frame = av.VideoFrame.from_ndarray(img.clip(0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        samples = int(frames / fps * 48000)
        for start in range(0, samples, 1024):
            tone = np.sin(2 * np.pi * 440 * (np.arange(1024) + start) / 48000).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([tone, tone]) * 0.2, "fltp", "stereo")
            af.sample_rate, af.pts = 48000, start
            out.mux(audio.encode(af))
        out.mux(audio.encode())
    return path


def extract(clip: Path, folder: Path) -> None:
    """Every frame of ``clip`` as PNG, in order (what `ffmpeg -i clip frames/%06d.png` does)."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(clip)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            frame.to_image().save(folder / f"{i:06d}.png", compress_level=1)


def reassemble(folder: Path, clip: Path, dest: Path) -> None:
    """The PNGs of ``folder`` at ``clip``'s frame rate, libx264 CRF 18, with its audio copied."""
    import av
    from PIL import Image

    with av.open(str(clip)) as src, av.open(str(dest), "w") as out:
        rate = src.streams.video[0].average_rate or Fraction(24)
        names = sorted(folder.glob("*.png"))
        w, h = Image.open(names[0]).size
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "18"}
        audio = out.add_stream_from_template(src.streams.audio[0]) if src.streams.audio else None
        for i, name in enumerate(names):
            frame = av.VideoFrame.from_image(Image.open(name).convert("RGB"))
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if audio is not None:
            for packet in src.demux(src.streams.audio[0]):
                if packet.dts is not None:
                    packet.stream = audio
                    out.mux(packet)


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:5])}... failed ({proc.returncode}): {proc.stderr[-800:]}")


def video_route(clip: Path, work: Path, style: list[str], extra: list[str]) -> float:
    start = time.perf_counter()
    out = work / "out.mp4"
    run([PY, "-m", "posterforge", "translate", str(clip), "-o", str(out), "-q", "--overwrite",
         *style, *extra])  # fmt: skip
    return time.perf_counter() - start


def frames_route(clip: Path, work: Path, style: list[str], extra: list[str]) -> float:
    me = str(Path(__file__).resolve())
    start = time.perf_counter()
    run([PY, me, "extract", str(clip), str(work / "frames")])
    run([PY, "-m", "posterforge", "translate", str(work / "frames"), "-o", str(work / "styled"),
         "-q", "--overwrite", *style, *extra])  # fmt: skip
    run([PY, me, "reassemble", str(work / "styled"), str(clip), str(work / "out.mp4")])
    return time.perf_counter() - start


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "extract":
        return extract(Path(sys.argv[2]), Path(sys.argv[3]))
    if len(sys.argv) > 1 and sys.argv[1] == "reassemble":
        return reassemble(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--style", default="vintage")
    p.add_argument("--no-flicker", action="store_true", help="no flicker measure")
    p.add_argument("extra", nargs="*", help="after --: options for both translate runs")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    style = ["--style", args.style]
    with tempfile.TemporaryDirectory(prefix="pf-bench-video-") as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.frames, w, h)
        routes = {"video": video_route, "frames": frames_route}
        times: dict[str, list[float]] = {name: [] for name in routes}
        print(f"{w}x{h}, {args.frames} frames, style {args.style}, extra {args.extra}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for r in range(args.rounds):
            order = list(routes) if r % 2 == 0 else list(routes)[::-1]
            for name in order:
                work = Path(tmp) / name
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                secs = routes[name](clip, work, style, args.extra)
                times[name].append(secs)
                print(f"round {r + 1} {name:6s} {secs:7.2f} s  {args.frames / secs:6.3f} frames/s")
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for name, secs in times.items():
            fps = [args.frames / s for s in secs]
            print(
                f"{name:6s} median {statistics.median(fps):.3f} frames/s "
                f"(spread {min(fps):.3f}-{max(fps):.3f}, {len(fps)} rounds)"
            )
        ratio = statistics.median(times["frames"]) / statistics.median(times["video"])
        print(f"video route / frames route speed: {ratio:.2f}x")
        if not args.no_flicker:
            for name in routes:
                print(flicker_line(name, clip, Path(tmp) / name / "out.mp4"))


def flicker_line(route: str, clip: Path, out: Path) -> str:
    """The flicker that ``route``'s output added to ``clip``, as one line."""
    from posterforge.evaluation.temporal import measure_clips
    from posterforge.jobs.evalvideo import EvalVideoJob

    r = measure_clips(EvalVideoJob(clip, out))
    ratio = "n/a" if r.ratio is None else f"{r.ratio:.2f}"
    return (
        f"{route:6s} flicker: warped error {r.output:.6f} (input {r.input:.6f}), ratio {ratio}, "
        f"{len(r.shots)} shot(s), {r.pairs} pairs"
    )


if __name__ == "__main__":
    main()
