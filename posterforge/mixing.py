"""Style mixing grids (``posterforge mix``) for generator families with per-layer styles (the
:class:`~posterforge.models.StyleMixer` capability), as in stylegan2-ada's ``style_mixing.py``
but with labels: every poster of the grid is drawn under the same label.

The top row holds the column seeds' posters, the left column the row seeds'; cell (r, c) takes
row r's w on every layer except ``layers``, which take column c's. Seed ``s`` is the poster
``generate --seeds s`` makes (noise ``(s, 0)``), so a cell whose seeds agree is that poster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posterforge.capabilities import require
from posterforge.context import Context, default_context
from posterforge.jobs.mix import MixJob
from posterforge.models import LatentGenerator, StyleMixer
from posterforge.records import Kind


@dataclass
class MixGrid:
    """What :func:`mix` made: the grid file and its cells as uint8 ``(rows, cols, H, W, 3)``
    (the header row and column not included), the layers mixed."""

    path: Path
    cells: np.ndarray
    layers: tuple[int, int]  # first, last (inclusive)
    rows: tuple[int, ...]
    cols: tuple[int, ...]


def mix(job: MixJob, ctx: Context | None = None) -> MixGrid:
    """Build the model, check its capability, the label and the layers (one line each), render
    the grid and write it atomically."""
    import torch

    from posterforge.catalog import resolve_model
    from posterforge.engine import Engine
    from posterforge.images import encode_atomic
    from posterforge.sampling import load_generator, noise_at

    ctx = ctx or default_context()
    resolved = resolve_model(job.model, Kind.GENERATOR, ctx.host, ctx.store)
    gen = load_generator(resolved, device=job.device, precision="fp32", compile="off", ctx=ctx)
    what = "per-layer styles (the StyleMixer capability)"
    mixer = require(gen.module, StyleMixer, what, job.model, verb="mix styles",
                    family=resolved.cls.name)  # fmt: skip
    latents = require(gen.module, LatentGenerator, what, job.model, verb="mix styles",
                      family=resolved.cls.name)  # fmt: skip
    gen.caption(job.genre)  # a label the model lacks, or one it does not take: one line
    layers = job.layer_range(mixer.style_layers)
    row = gen.conditions(job.genre, 1)
    cond = None if row is None else row.to(gen.engine.device)
    seeds = sorted(set(job.rows) | set(job.cols))
    with torch.no_grad():
        z = noise_at([(s, 0) for s in seeds], gen.z_dim).to(gen.engine.device)
        c = None if cond is None else cond.expand(len(seeds), -1)
        w = latents.to_latent(z, c)
        if job.truncation is not None:
            w = latents.latent_start(c).to(w).lerp(w, job.truncation)
        w_of = dict(zip(seeds, w, strict=True))

        def image(ws: torch.Tensor) -> np.ndarray:
            return Engine.to_uint8(mixer.render_styles(ws[None], cond)).numpy()[0]

        n = mixer.style_layers
        plain = {s: image(w_of[s][None].expand(n, -1)) for s in seeds}
        cells = np.stack([
            np.stack([image(_mixed(w_of[r], w_of[k], n, layers)) for k in job.cols])
            for r in job.rows
        ])  # fmt: skip
    encode_atomic(_sheet(cells, [plain[s] for s in job.rows], [plain[s] for s in job.cols]),
                  job.out)  # fmt: skip
    return MixGrid(job.out, cells, (layers.start, layers.stop - 1), job.rows, job.cols)


def _mixed(w_row: Any, w_col: Any, n: int, layers: range) -> Any:
    ws = w_row[None].expand(n, -1).clone()
    ws[layers.start : layers.stop] = w_col
    return ws


def _sheet(cells: np.ndarray, row_heads: list, col_heads: list, gap: int = 4) -> np.ndarray:
    """The grid with a header row (column posters) and column (row posters); the corner is
    empty."""
    rows, cols, h, w, _ = cells.shape
    sheet = np.full(((rows + 1) * (h + gap) + gap, (cols + 1) * (w + gap) + gap, 3), 24, np.uint8)

    def put(r: int, c: int, img: np.ndarray) -> None:
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y : y + h, x : x + w] = img

    for c, img in enumerate(col_heads):
        put(0, c + 1, img)
    for r, img in enumerate(row_heads):
        put(r + 1, 0, img)
        for c in range(cols):
            put(r + 1, c + 1, cells[r, c])
    return sheet
