"""Projection: the latent whose image best matches a real poster, for any generator family with
the :class:`~posterforge.models.LatentGenerator` capability.

    ProjectJob ─► start(): resolve and build the model once, check labels, decode and fit every
    poster, check the outputs ─► ProjectRun.records(): per poster, [screen every label] ─►
    optimise (Adam) ─► reconstruction .png, latent .npz, record .json [, re-renders, row]

The loss is ``mse(pixels) + feature_weight * relative mse(features)``, the features from the
evaluation extractor (``posterforge eval``'s default, or ``features``). Like stylegan2-ada's
projector, the optimisation starts at ``latent_start`` (the label's ``w_avg``; zeros for z),
adds seeded noise to the latent over its first three quarters (scaled by the latent's spread) and
ramps the learning rate up over the first 5% of the steps and down (cosine) over the last 25%.
Without a label, every label is first screened with the pixel loss alone for a quarter of the
steps (all labels in one batch); the best one is then projected in full.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import check_writable, write_text_atomic
from posterforge.capabilities import require
from posterforge.context import Context, default_context
from posterforge.errors import PosterforgeError
from posterforge.jobs.project import ProjectJob
from posterforge.models import LatentGenerator
from posterforge.records import OK, SKIPPED, Kind, Status

if TYPE_CHECKING:
    import numpy as np
    import torch

    from posterforge.sampling import LoadedGenerator

Progress = Callable[[int, int], None]  # (steps done, steps in all)


@dataclass
class Projected:
    """One poster's projection: ``--json`` prints one of these per line."""

    poster: str
    reconstruction: str
    latent: str
    record: str
    label: str
    losses: dict[str, float] = field(default_factory=dict)
    ranking: list[tuple[str, float]] = field(default_factory=list)
    rerenders: list[str] = field(default_factory=list)
    status: Status = OK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_poster(rgb: np.ndarray, size: tuple[int, int], fit: str) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, h, w) float in [0, 1] at ``size`` = (w, h), the aspect kept:
    ``crop`` takes the largest centred window of the model's aspect, ``letterbox`` fits the
    whole poster and fills the bars with its mean colour. Never stretched."""
    import numpy
    import torch
    import torch.nn.functional as F

    # a copy: an array read from Pillow is read-only, and torch warns about it on stderr
    rgb = numpy.array(rgb, dtype=numpy.uint8)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)
    (w, h), (W, H) = size, (rgb.shape[1], rgb.shape[0])
    scale = max(w / W, h / H) if fit == "crop" else min(w / W, h / H)
    nw, nh = max(1, round(W * scale)), max(1, round(H * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    if fit == "crop":
        top, left = (nh - h) // 2, (nw - w) // 2
        return x[:, :, top : top + h, left : left + w].clamp(0, 1).contiguous()
    out = x.mean(dim=(2, 3), keepdim=True).expand(1, 3, h, w).clone()
    top, left = (h - nh) // 2, (w - nw) // 2
    out[:, :, top : top + nh, left : left + nw] = x
    return out.clamp(0, 1)


@dataclass
class Projector:
    """Optimises latents of ``module`` (on its device) toward a target image."""

    module: LatentGenerator
    device: Any
    extractor: Any = None  # a FeatureExtractor, or None for pixels only
    feature_weight: float = 0.0

    def spread(self, conds: torch.Tensor | None) -> float:
        """The latent's typical spread about its start (1 for z): the scale of the noise."""
        import torch

        if self.module.latent_kind == "z":
            return 1.0
        gen = torch.Generator(device="cpu").manual_seed(0)
        z_dim = int(self.module.z_dim)  # type: ignore[attr-defined]
        z = torch.randn(256, z_dim, generator=gen).to(self.device)
        c = None if conds is None else conds[:1].expand(256, -1)
        with torch.no_grad():
            lat = self.module.to_latent(z, c)
        return float(lat.sub(lat.mean(0)).square().sum(1).mean().sqrt())

    def losses(self, images: torch.Tensor, target: torch.Tensor, target_f: Any) -> tuple:
        """Per-row (pixel, feature) losses; feature is None without an extractor."""
        pix = (images - target).square().mean(dim=(1, 2, 3))
        if self.extractor is None or target_f is None:
            return pix, None
        f = self.extractor(images)
        feat = (f - target_f).square().mean(1) / target_f.square().mean().clamp_min(1e-8)
        return pix, feat

    def run(
        self,
        target: torch.Tensor,
        conds: torch.Tensor | None,
        steps: int,
        lr: float,
        seed: int,
        *,
        features: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[float]]:
        """``(B, D)`` latents (one per condition row), their final losses (per row, without
        noise) and the mean loss after each step (with noise)."""
        import torch

        target = target.to(self.device)
        start = self.module.latent_start(conds).detach().to(self.device)
        rows = start.shape[0]
        use_f = features and self.extractor is not None and self.feature_weight > 0
        with torch.no_grad():
            target_f = self.extractor(target) if use_f else None
        scale = 0.05 * self.spread(conds)
        latent = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([latent], lr=lr, betas=(0.9, 0.999))
        gen = torch.Generator(device="cpu").manual_seed(seed)
        curve: list[float] = []
        for step in range(steps):
            t = step / steps
            ramp = min(1.0, (1.0 - t) / 0.25)
            ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, (t + 1 / steps) / 0.05)
            for group in opt.param_groups:
                group["lr"] = lr * ramp
            noise = torch.randn(latent.shape, generator=gen).to(self.device)
            noise = noise * scale * max(0.0, 1.0 - t / 0.75) ** 2
            with torch.enable_grad():
                pix, feat = self.losses(self.module.render(latent + noise, conds), target,
                                        target_f)  # fmt: skip
                loss = pix if feat is None else pix + self.feature_weight * feat
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
            opt.step()
            curve.append(float(loss.detach().mean()))
            if progress is not None:
                progress(1)
        with torch.no_grad():
            pix, feat = self.losses(self.module.render(latent, conds), target, target_f)
            total = pix if feat is None else pix + self.feature_weight * feat
        final = {"pixel": pix, "total": total}
        if feat is not None:
            final["feature"] = feat
        assert latent.shape[0] == rows
        return latent.detach(), final, curve


@dataclass
class _Poster:
    path: Path
    target: torch.Tensor  # (1, 3, H, W) in [0, 1], fitted
    stem: str


def start(job: ProjectJob, ctx: Context | None = None) -> ProjectRun:
    """Resolve and build the model, check its capability and every label, decode and fit every
    poster and check the outputs: each fault is one line here, before any optimisation."""
    from posterforge.catalog import resolve_model
    from posterforge.images import decode
    from posterforge.sampling import load_generator

    ctx = ctx or default_context()
    resolved = resolve_model(job.model, Kind.GENERATOR, ctx.host, ctx.store)
    gen = load_generator(resolved, device=job.device, precision="fp32", compile="off", ctx=ctx)
    module = require(gen.module, LatentGenerator, "latent (the LatentGenerator capability)",
                     job.model, verb="project", family=resolved.cls.name)  # fmt: skip
    labels = _candidates(gen, job.genre)
    as_rows = [(gen.caption(s), gen.conditions(s, 1)) for s in job.as_labels]
    posters = []
    for p in job.posters:
        rgb = decode(p).rgb  # unreadable: ImageError, one line naming the file
        posters.append(_Poster(p, fit_poster(rgb, gen.image_size, job.fit), p.stem))
    check_writable(job.out)
    settings = _settings(job, resolved.model_id)
    for p in posters:
        _check_outputs(job, p.stem, settings)
    extractor = None
    if job.feature_weight > 0:
        from posterforge.evaluation.features import default_extractor

        extractor = default_extractor(ctx.host, job.features).to(gen.engine.device)
    projector = Projector(module, gen.engine.device, extractor, job.feature_weight)
    return ProjectRun(job, gen, resolved.sha256 or "", projector, labels, as_rows, posters,
                      settings)  # fmt: skip


def _candidates(gen: LoadedGenerator, genre: str | None) -> list[tuple[str, Any]]:
    """(caption, condition row) of the label asked for, or of every label."""
    if not gen.conditional:
        gen.caption(genre)  # a --genre for an unconditional model: one line
        return [("", None)]
    if genre is not None:
        return [(gen.caption(genre), gen.conditions(genre, 1))]
    return [(gen.caption(n), gen.conditions(n, 1)) for n in gen.label_names or []]


def _settings(job: ProjectJob, model_id: str) -> dict[str, Any]:
    return {
        "command": "project", "model": model_id, "genre": job.genre, "steps": job.steps,
        "lr": job.lr, "seed": job.seed, "fit": job.fit, "feature_weight": job.feature_weight,
        "features": job.features, "as": list(job.as_labels),
    }  # fmt: skip


def outputs_of(out: Path, stem: str) -> dict[str, Path]:
    return {k: out / f"{stem}{suffix}" for k, suffix in
            (("reconstruction", ".png"), ("latent", ".npz"), ("record", ".json"))}  # fmt: skip


def _check_outputs(job: ProjectJob, stem: str, settings: dict[str, Any]) -> None:
    """Outputs that exist: skipped when these settings made them, else refused (one line)."""
    if job.overwrite:
        return
    paths = outputs_of(job.out, stem)
    existing = [p for p in paths.values() if p.exists()]
    if existing and _made_with(paths["record"]) != settings:
        raise PosterforgeError(
            f"{existing[0]} exists (made with other settings or unfinished): pass --overwrite "
            "to replace it"
        )


def _made_with(record: Path) -> dict[str, Any] | None:
    try:
        return json.loads(record.read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        return None


@dataclass
class _Result:
    latent: torch.Tensor  # (1, D)
    cond: torch.Tensor | None
    caption: str
    final: dict[str, torch.Tensor]
    curve: list[float]
    ranking: list[tuple[str, float]]


@dataclass(eq=False)
class ProjectRun:
    """A planned projection, its model built and posters decoded: :meth:`records` works."""

    job: ProjectJob
    generator: LoadedGenerator
    sha256: str
    projector: Projector
    labels: list[tuple[str, Any]]
    as_rows: list[tuple[str, Any]]
    posters: list[_Poster]
    settings: dict[str, Any]

    @property
    def screen_steps(self) -> int:
        return max(1, self.job.steps // 4) if len(self.labels) > 1 else 0

    @property
    def total_steps(self) -> int:
        return len(self.posters) * (self.job.steps + self.screen_steps)

    def records(self, progress: Callable[[int], None] | None = None) -> Iterator[Projected]:
        """One :class:`Projected` per poster as it is written; ``progress(n)`` counts steps."""
        for p in self.posters:
            paths = outputs_of(self.job.out, p.stem)
            if not self.job.overwrite and paths["record"].exists():
                if progress is not None:
                    progress(self.job.steps + self.screen_steps)
                yield _skipped(p, paths)
                continue
            yield self._project(p, paths, progress)

    def _project(self, p: _Poster, paths: dict[str, Path], progress: Any) -> Projected:
        import torch

        job, ranking = self.job, []
        caption, row = self.labels[0]
        if len(self.labels) > 1:  # screen every label at once, pixels only
            conds = torch.cat([r for _, r in self.labels]).to(self.projector.device)
            _, final, _ = self.projector.run(p.target, conds, self.screen_steps, job.lr,
                                             job.seed, features=False, progress=progress)
            pixel = final["pixel"].cpu().tolist()
            ranking = sorted(((c, float(v)) for (c, _), v in zip(self.labels, pixel,
                              strict=True)), key=lambda cv: cv[1])  # fmt: skip
            caption, row = ranking[0][0], dict(self.labels)[ranking[0][0]]
        cond = None if row is None else row.to(self.projector.device)
        latent, final, curve = self.projector.run(p.target, cond, job.steps, job.lr, job.seed,
                                                  progress=progress)  # fmt: skip
        return self._write(p, paths, _Result(latent, cond, caption, final, curve, ranking))

    def _write(self, p: _Poster, paths: dict[str, Path], r: _Result) -> Projected:
        from posterforge.engine import Engine
        from posterforge.images import encode_atomic
        from posterforge.latents import LatentFile
        from posterforge.rerender import rerender, row_sheet

        module, out = self.projector.module, self.job.out
        latent, cond, caption = r.latent, r.cond, r.caption
        out.mkdir(parents=True, exist_ok=True)
        with _no_grad():
            recon = module.render(latent, cond)
        recon_u8 = Engine.to_uint8(recon).numpy()[0]
        encode_atomic(recon_u8, paths["reconstruction"])
        LatentFile(latent.cpu().numpy()[0], module.latent_kind, self.sha256,
                   self.job.model, caption).save(paths["latent"])  # fmt: skip
        rerenders = []
        if self.as_rows:
            images = rerender(module, latent, cond, [r for _, r in self.as_rows])
            tiles = [Engine.to_uint8(p.target).numpy()[0], recon_u8]
            for (c, _), img in zip(self.as_rows, images, strict=True):
                dest = out / f"{p.stem}-as-{_stem(c)}.png"
                encode_atomic(img, dest)
                rerenders.append(str(dest))
                tiles.append(img)
            captions = ["poster", caption or "reconstruction"] + [c for c, _ in self.as_rows]
            row_path = out / f"{p.stem}-row.png"
            encode_atomic(row_sheet(tiles, captions), row_path)
            rerenders.append(str(row_path))
        losses = {k: float(v[0]) for k, v in r.final.items()}
        ranking, curve = r.ranking, r.curve
        record = {
            "poster": str(p.path), "label": caption, "losses": losses, "ranking": ranking,
            "loss_curve": [round(v, 6) for v in curve], "steps": self.job.steps,
            "screen_steps": self.screen_steps, "model_sha256": self.sha256,
            "latent_kind": module.latent_kind, "rerenders": rerenders, "settings": self.settings,
        }  # fmt: skip
        write_text_atomic(paths["record"], json.dumps(record, indent=1) + "\n")  # the last
        return Projected(str(p.path), str(paths["reconstruction"]), str(paths["latent"]),
                         str(paths["record"]), caption, losses, ranking, rerenders)  # fmt: skip


def _skipped(p: _Poster, paths: dict[str, Path]) -> Projected:
    rec = json.loads(paths["record"].read_text())
    return Projected(str(p.path), str(paths["reconstruction"]), str(paths["latent"]),
                     str(paths["record"]), rec.get("label", ""), rec.get("losses", {}),
                     [tuple(r) for r in rec.get("ranking", [])], rec.get("rerenders", []),
                     SKIPPED)  # fmt: skip


def _stem(caption: str) -> str:
    from posterforge.generation import file_stem

    return file_stem(caption)


def _no_grad() -> Any:
    import torch

    return torch.no_grad()


def project_iter(job: ProjectJob, ctx: Context | None = None) -> Iterator[Projected]:
    """:func:`start` then :meth:`ProjectRun.records`."""
    yield from start(job, ctx).records()

