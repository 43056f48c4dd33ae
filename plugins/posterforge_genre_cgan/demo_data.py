"""The demo poster set: synthetic posters whose palette and composition depend on the genre.

No real poster data set can ship with posterforge or be downloaded at run time, so the shipped demo
generator (``posters-demo``) is trained on this instead. It is deterministic: the same arguments
write byte-identical files. Each genre has its own background gradient, accent colour, motif
(a sun, a figure, mountains, stripes, ...) and title-bar position; every poster jitters them, and
a share of posters carry a second genre (its motif drawn over the first genre's palette)::

    python -m posterforge_genre_cgan.demo_data make OUT [--per-genre 150] [--seed 0]

writes ``OUT/posters/*.png`` (96x192) and ``OUT/labels.csv`` (``path,genres``), and

    python -m posterforge_genre_cgan.demo_data ship RUN_DIR

copies a finished run's model into the plugin as the shipped ``posters-demo`` weights, with a
plain statement of what it was trained on in its metadata (``make demo-model`` does all three
steps: data, training, ship).
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from posterforge.plugin import atomic_write
from posterforge_genre_cgan import genre_vocabulary

SIZE = (96, 192)  # W x H, twice the generator's 64x128 so that training resizes them


@dataclass(frozen=True)
class Look:
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    accent: tuple[int, int, int]
    motif: str
    title_top: bool


LOOKS: dict[str, Look] = {
    "action": Look((250, 140, 30), (120, 20, 10), (255, 230, 60), "diagonal", False),
    "adventure": Look((120, 190, 240), (220, 190, 120), (40, 120, 50), "mountains", True),
    "animation": Look((255, 160, 210), (150, 210, 255), (255, 240, 40), "dots", True),
    "biography": Look((225, 205, 170), (110, 80, 50), (60, 40, 25), "figure", False),
    "comedy": Look((255, 235, 60), (255, 255, 235), (40, 90, 230), "sun", True),
    "crime": Look((70, 70, 75), (10, 10, 12), (250, 210, 20), "bars", False),
    "documentary": Look((245, 245, 245), (150, 150, 150), (20, 20, 20), "grid", False),
    "drama": Look((40, 60, 120), (110, 120, 140), (230, 230, 210), "figure", False),
    "family": Look((170, 230, 140), (255, 240, 150), (250, 140, 40), "sun", True),
    "fantasy": Look((110, 40, 150), (20, 80, 90), (240, 200, 70), "rays", True),
    "history": Look((215, 195, 150), (90, 60, 35), (120, 25, 30), "stripes", False),
    "horror": Look((15, 10, 10), (110, 5, 10), (220, 20, 20), "figure", False),
    "music": Look((200, 30, 160), (20, 10, 30), (40, 240, 240), "bars", True),
    "mystery": Look((20, 70, 80), (5, 15, 20), (200, 240, 200), "sun", False),
    "romance": Look((255, 170, 190), (200, 30, 70), (255, 250, 250), "sun", True),
    "sci-fi": Look((5, 5, 20), (20, 40, 110), (40, 230, 255), "grid", True),
    "sport": Look((60, 170, 70), (15, 80, 25), (250, 250, 250), "stripes", False),
    "thriller": Look((120, 120, 125), (15, 15, 20), (255, 130, 20), "diagonal", False),
    "war": Look((110, 110, 60), (60, 55, 35), (20, 20, 15), "mountains", False),
    "western": Look((245, 150, 60), (200, 160, 100), (90, 50, 20), "sun", False),
}


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 18) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _motif(draw: ImageDraw.ImageDraw, motif: str, colour: tuple, rng: np.random.Generator) -> None:
    w, h = SIZE
    if motif == "sun":
        r = int(rng.integers(16, 30))
        cx, cy = int(rng.integers(r, w - r)), int(rng.integers(h // 4, h // 2))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif motif == "figure":
        cx, top = int(rng.integers(30, w - 30)), int(rng.integers(60, 90))
        draw.ellipse((cx - 10, top, cx + 10, top + 22), fill=colour)
        draw.polygon([(cx - 26, h), (cx - 14, top + 24), (cx + 14, top + 24), (cx + 26, h)], colour)
    elif motif == "mountains":
        base = int(rng.integers(120, 150))
        for _ in range(3):
            x, peak = int(rng.integers(-20, w)), int(rng.integers(50, 100))
            draw.polygon([(x - 50, base + 40), (x + 10, peak), (x + 70, base + 40)], colour)
        draw.rectangle((0, base + 30, w, h), fill=colour)
    elif motif == "diagonal":
        for k in range(int(rng.integers(3, 6))):
            off = int(rng.integers(-60, 60)) + 40 * k
            draw.line((0, h // 2 + off, w, off), fill=colour, width=int(rng.integers(5, 10)))
    elif motif == "stripes":
        step = int(rng.integers(18, 28))
        for y in range(int(rng.integers(0, step)), h, step):
            draw.rectangle((0, y, w, y + step // 3), fill=colour)
    elif motif == "bars":
        for x in range(4, w - 8, 12):
            top = int(rng.integers(h // 3, h - 30))
            draw.rectangle((x, top, x + 7, h - 20), fill=colour)
    elif motif == "dots":
        for _ in range(int(rng.integers(8, 14))):
            r, cx, cy = int(rng.integers(4, 10)), int(rng.integers(0, w)), int(rng.integers(0, h))
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif motif == "grid":
        step = int(rng.integers(12, 20))
        for x in range(int(rng.integers(0, step)), w, step):
            draw.line((x, h // 3, x, h), fill=colour, width=1)
        for y in range(h // 3, h, step):
            draw.line((0, y, w, y), fill=colour, width=1)
    elif motif == "rays":
        cx, cy = w // 2 + int(rng.integers(-15, 16)), int(rng.integers(30, 70))
        for a in np.linspace(0, np.pi, int(rng.integers(7, 11))):
            draw.line((cx, cy, cx + 150 * np.cos(a), cy + 150 * np.sin(a)), fill=colour, width=3)
    else:
        raise ValueError(f"unknown motif {motif!r}")


def poster(genre: str, rng: np.random.Generator, second: str | None = None) -> Image.Image:
    """One synthetic poster of ``genre`` (and the motif of ``second``, when given)."""
    look = LOOKS[genre]
    w, h = SIZE
    top, bottom = np.array(_jitter(rng, look.top)), np.array(_jitter(rng, look.bottom))
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    grad = (top * (1 - t) + bottom * t).repeat(w, axis=1)
    im = Image.fromarray(grad.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    _motif(draw, look.motif, _jitter(rng, look.accent), rng)
    if second is not None:
        _motif(draw, LOOKS[second].motif, _jitter(rng, LOOKS[second].accent), rng)
    bar_y = 8 if look.title_top else h - 34
    bar = (12, 12, 12) if sum(look.top) > 380 else (240, 240, 230)
    draw.rectangle((6, bar_y, w - 6, bar_y + 24), fill=bar)
    title = "".join(chr(int(c)) for c in rng.integers(65, 91, size=int(rng.integers(4, 9))))
    draw.text((10, bar_y + 6), title, fill=look.accent)
    noise = rng.normal(0.0, 6.0, size=(h, w, 3))
    return Image.fromarray(
        np.clip(np.asarray(im, dtype=np.float64) + noise, 0, 255).astype("uint8")
    )


def make_demo_posters(
    out: str | Path, per_genre: int = 150, seed: int = 0, mixed_share: float = 0.25
) -> Path:
    """Write the demo set into ``out`` (see the module docstring); return the labels file."""
    out = Path(out)
    names = list(genre_vocabulary()["names"])
    missing = [g for g in names if g not in LOOKS]
    if missing:
        raise ValueError(f"no demo look for genres {missing}")
    (out / "posters").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for gi, genre in enumerate(names):
        for k in range(per_genre):
            second = None
            if rng.random() < mixed_share:
                second = names[(gi + 1 + int(rng.integers(len(names) - 1))) % len(names)]
            rel = f"posters/{genre}-{k:04d}.png"
            buf = io.BytesIO()
            poster(genre, rng, second).save(buf, format="PNG")
            with atomic_write(out / rel) as f:
                f.write(buf.getvalue())
            rows.append((rel, genre if second is None else f"{genre}|{second}"))
    labels = out / "labels.csv"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "genres"])
    writer.writerows(rows)
    with atomic_write(labels) as f:
        f.write(text.getvalue().encode())
    return labels


TRAINED_ON = (
    "synthetic demo posters, not real films: {per_genre} per genre drawn by "
    "`python -m posterforge_genre_cgan.demo_data make OUT --per-genre {per_genre} --seed {seed}` "
    "(a gradient, a motif and a title bar per genre)"
)


def ship(run_dir: str | Path, per_genre: int = 150, seed: int = 0) -> Path:
    """Copy ``RUN_DIR/model.safetensors`` to the plugin's shipped demo weights (+ sha256)."""
    from posterforge.plugin import ship_weights
    from posterforge_genre_cgan import DEMO_FILE

    return ship_weights(
        Path(run_dir) / "model.safetensors",
        DEMO_FILE,
        description="Demo poster generator trained on synthetic posters (not real films)",
        licence="MIT",
        provenance={
            "trained_on": TRAINED_ON.format(per_genre=per_genre, seed=seed),
            "command": "make demo-model",
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write the demo poster set")
    make.add_argument("out", type=Path, help="folder to write posters/ and labels.csv into")
    ship_cmd = sub.add_parser("ship", help="ship a finished run as the posters-demo weights")
    ship_cmd.add_argument("run_dir", type=Path)
    for p in (make, ship_cmd):
        p.add_argument("--per-genre", type=int, default=150)
        p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "make":
        print(make_demo_posters(args.out, args.per_genre, args.seed))
    else:
        print(ship(args.run_dir, args.per_genre, args.seed))


if __name__ == "__main__":
    main()
