"""Re-rendering a latent under other labels: ``generate --from-latent x.npz --genre horror`` and
``project ... --as horror,comedy``.

The latent keeps its offset from its own label's start and moves with the label:
``render(latent - latent_start(source) + latent_start(target), target)``. For z (the genre
cGAN) the start is zero, so that is the same z under the new label; for W (StyleGAN, whose
synthesis sees only w) it moves w from the source label's ``w_avg`` to the target's, which is
what changes the genre there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.atomic import check_writable
from posterforge.capabilities import require
from posterforge.context import Context, default_context
from posterforge.models import LatentGenerator
from posterforge.records import OK, SKIPPED, Kind

if TYPE_CHECKING:
    import torch

    from posterforge.generation import Poster
    from posterforge.jobs.generate import GenerateJob
    from posterforge.sampling import LoadedGenerator


def rerender(
    module: LatentGenerator,
    latent: torch.Tensor,
    source: torch.Tensor | None,
    targets: Sequence[torch.Tensor | None],
) -> list[np.ndarray]:
    """(H, W, 3) uint8 images of ``latent`` ``(1, D)`` (projected under ``source``) under each
    target condition ``(1, C)``."""
    import torch

    from posterforge.engine import Engine

    out = []
    with torch.no_grad():
        base = latent - module.latent_start(_on(source, latent)).to(latent)
        for t in targets:
            t = _on(t, latent)
            moved = base + module.latent_start(t).to(latent)
            out.append(Engine.to_uint8(module.render(moved, t)).numpy()[0])
    return out


def _on(cond: Any, like: Any) -> Any:
    return None if cond is None else cond.to(like.device)


def row_sheet(tiles: Sequence[np.ndarray], captions: Sequence[str], gap: int = 4) -> np.ndarray:
    """Equal-size (H, W, 3) uint8 tiles side by side, each captioned underneath."""
    from PIL import Image, ImageDraw

    h, w = tiles[0].shape[:2]
    line = 16
    sheet = Image.new("RGB", (len(tiles) * (w + gap) + gap, h + 2 * gap + line), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        x = gap + i * (w + gap)
        sheet.paste(Image.fromarray(tile), (x, gap))
        draw.text((x, gap + h + 2), caption[: max(1, w // 6)], fill=(235, 235, 235))
    return np.asarray(sheet)


def start_from_latent(job: GenerateJob, ctx: Context | None = None) -> RerenderRun:
    """``generate --from-latent``: the model resolved and built, the latent checked against it
    (its weights' sha256, its kind and size), every label checked; one line each, before work."""
    from posterforge.catalog import resolve_model
    from posterforge.latents import check_latent, load_latent
    from posterforge.sampling import load_generator

    assert job.from_latent is not None
    ctx = ctx or default_context()
    lf = load_latent(job.from_latent)
    resolved = resolve_model(job.model, Kind.GENERATOR, ctx.host, ctx.store)
    if job.out is not None:
        check_writable(job.out)
    gen = load_generator(resolved, device=job.device, precision="fp32", compile="off", ctx=ctx)
    module = require(gen.module, LatentGenerator, "latent (the LatentGenerator capability)",
                     job.model, verb="render a latent", family=resolved.cls.name)  # fmt: skip
    vec = check_latent(lf, job.from_latent, kind=module.latent_kind,
                       dim=int(getattr(module, "latent_dim", len(lf.latent))),
                       sha256=resolved.sha256)  # fmt: skip
    specs: list[str | None] = list(job.conditions) or [None]
    captions = [gen.caption(s) for s in specs]
    source = gen.conditions(lf.label, 1) if gen.conditional and lf.label else None
    rows = [gen.conditions(s, 1) for s in specs]
    return RerenderRun(job, gen, vec, source, list(zip(captions, rows, strict=True)))


@dataclass(eq=False)
class RerenderRun:
    """The latent under each condition: ``CAPTION-STEM.png`` under ``out`` and/or a grid."""

    job: GenerateJob
    generator: LoadedGenerator
    latent: np.ndarray
    source: Any
    targets: list[tuple[str, Any]]
    conditions: tuple = ()  # generate's interrupt report looks here: nothing to add

    def records(self) -> Iterator[Poster]:
        import torch

        from posterforge.generation import Poster, file_stem
        from posterforge.images import FORMATS, encode_atomic

        job, module = self.job, self.generator.module
        assert job.from_latent is not None
        latent = torch.from_numpy(self.latent)[None].to(self.generator.engine.device)
        images = rerender(module, latent, self.source, [r for _, r in self.targets])  # type: ignore[arg-type]
        stem = job.from_latent.stem
        for (caption, _), image in zip(self.targets, images, strict=True):
            if job.out is None:
                continue
            prefix = f"{file_stem(caption)}-" if caption else ""
            dest = job.out / f"{prefix}{stem}{FORMATS[job.fmt].suffix}"
            if dest.exists() and not job.overwrite:
                yield Poster(str(dest), caption, 0, 0, SKIPPED)
                continue
            job.out.mkdir(parents=True, exist_ok=True)
            encode_atomic(image, dest, fmt=job.fmt)
            yield Poster(str(dest), caption, 0, 0, OK)
        if job.grid is not None:
            encode_atomic(row_sheet(images, [c or stem for c, _ in self.targets]), job.grid)

