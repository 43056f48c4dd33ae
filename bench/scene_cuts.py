"""Benchmark: the shot cuts that `frames --scenes`' own detector finds against PySceneDetect's
ContentDetector and AdaptiveDetector (its PyAV backend), on the project's test clips
(posterforge.video.testclips: a still shot with sensor noise, a slow pan, a shot with a cut, as
camera-like H.264) and the demo clip (examples/make_clip.py: photos in turn, each slowly zoomed).

Printed per clip: the cut frames each detector finds (frame 0, the start, left out) beside the
true cuts. Needs the video-metrics extra (scenedetect-headless).

    .venv/bin/python bench/scene_cuts.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ours(path: Path) -> list[int]:
    """The cuts of `frames --scenes` (posterforge.video.picks.ShotPicker, default threshold)."""
    import av

    from posterforge.video.picks import THUMB, ShotPicker

    shots: ShotPicker[int] = ShotPicker()
    starts = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate or 24)
        for i, frame in enumerate(c.decode(stream)):
            thumb = frame.reformat(width=THUMB[0], height=THUMB[1], format="rgb24",
                                   interpolation="AREA").to_ndarray()  # fmt: skip
            before = len(shots.cuts)
            shots.feed(i / rate, thumb, i)
            if len(shots.cuts) > before and i:
                starts.append(i)
    return starts


def pyscenedetect(path: Path, detector: str) -> list[int]:
    import scenedetect

    make = {"content": scenedetect.ContentDetector, "adaptive": scenedetect.AdaptiveDetector}
    # its default shortest shot is 15 frames; ours is 0.5 s (SETTLE_S): compare like with like
    kw = {} if detector.endswith("default") else {"min_scene_len": 0.5}
    scenes = scenedetect.detect(str(path), make[detector.split()[0]](**kw), backend="pyav")
    return [start.frame_num for start, _ in scenes[1:]]


def main() -> None:
    from posterforge.video import testclips as tc

    with tempfile.TemporaryDirectory(prefix="pf-cuts-") as tmp:
        t = Path(tmp)
        demo = t / "demo.mp4"
        subprocess.run([sys.executable, str(ROOT / "examples/make_clip.py"),
                        str(ROOT / "examples/frames"), str(demo)], check=True)  # fmt: skip
        n_photos = len([p for p in (ROOT / "examples/frames").iterdir()
                        if p.suffix.lower() in (".jpg", ".png")])  # fmt: skip
        clips = {
            "still": (tc.write_video(tc.still(36), t / "still.mp4", lossless=False), []),
            "pan": (tc.write_video(tc.pan(36, speed=1.0), t / "pan.mp4", lossless=False), []),
            "fast pan": (tc.write_video(tc.pan(36, speed=6.0), t / "fpan.mp4", lossless=False),
                         []),
            "cut": (tc.write_video(tc.cut(36, 18), t / "cut.mp4", lossless=False), [18]),
            "demo": (demo, [12 * i for i in range(1, n_photos)]),
        }
        for name, (path, truth) in clips.items():
            print(f"{name:9s} true {truth}")
            print(f"{'':9s} ours             {ours(path)}")
            for d in ("content default", "adaptive default", "content", "adaptive"):
                print(f"{'':9s} {d:16s} {pyscenedetect(path, d)}")


if __name__ == "__main__":
    main()
