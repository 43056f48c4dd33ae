"""A short test clip from the example photos, for `make demo`: each photo in turn, slowly zoomed
(a Ken Burns pan), 12 frames a second, H.264 with a quiet AAC tone, so that `posterforge translate
clip.mp4` has a real video with sound to work on.

    python examples/make_clip.py examples/frames demo-out/clip.mp4
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

WIDTH, HEIGHT, FPS, SECONDS_EACH, RATE = 320, 240, 12, 1.0, 48_000


def frames(photo: Path) -> list[np.ndarray]:
    im = Image.open(photo).convert("RGB")
    scale = max(WIDTH / im.width, HEIGHT / im.height)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    out = []
    n = int(FPS * SECONDS_EACH)
    for i in range(n):
        zoom = 1.0 + 0.15 * i / n  # crop a slowly shrinking box and scale it back up
        w, h = round(WIDTH / zoom), round(HEIGHT / zoom)
        left, top = (im.width - w) // 2, (im.height - h) // 2
        box = im.crop((left, top, left + w, top + h)).resize((WIDTH, HEIGHT), Image.BILINEAR)
        out.append(np.asarray(box))
    return out


def main(folder: str, dest: str) -> None:
    photos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    with av.open(dest, "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="mono")
        index = 0
        for photo in photos:
            for rgb in frames(photo):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = index
                frame.time_base = Fraction(1, FPS)
                out.mux(video.encode(frame))
                index += 1
        out.mux(video.encode())
        seconds = index / FPS
        t = np.arange(int(seconds * RATE)) / RATE
        tone = (0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = tone[start : start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


if __name__ == "__main__":
    main(*sys.argv[1:3])
