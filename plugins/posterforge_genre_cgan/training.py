"""Training the genre-conditioned DCGAN as a :class:`~posterforge.training.task.TrainingTask`.

One step: the discriminator sees real posters with their genres and generated ones with the same
genres (non-saturating BCE or hinge loss), then the generator is updated through the fixed
discriminator. With ``diffaugment`` set, both batches go through the same kind of differentiable
kornia augmentation first. An exponential moving average of the generator's weights is what gets
sampled and exported. Batches are ``{"image": (B, 3, 128, 64) in [0, 1], "labels": (B, 20)}``
from a :class:`~posterforge.training.data.LabelledImageStream`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from posterforge.plugin import (
    Kind,
    LabelledImageStream,
    LabelledRecipe,
    LabelSet,
    autocast,
    check_precision,
    distributed,
    generator_metrics,
    label_grid,
    make_diffaugment,
    make_header,
    recipe_from_dict,
    training_precision,
    update_ema,
)
from posterforge_genre_cgan.config import HEIGHT, WIDTH, GenreConfig
from posterforge_genre_cgan.network import GenreDiscriminator, GenreGenerator

if TYPE_CHECKING:
    from posterforge.plugin import Context, Weights

ARCH = "genre-cgan"
LOSSES = ("bce", "hinge")


@dataclass
class GenreCGANRecipe(LabelledRecipe):
    """The training recipe, read from the ``[model]`` table of a TOML preset (the data keys,
    ``fit``, ``balance``, ``labels_from_data``, ..., are those of :class:`LabelledRecipe`)."""

    batch_size: int = 64
    z_dim: int = 100
    ngf: int = 64
    ndf: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    loss: str = "bce"  # "bce" (non-saturating, as DCGAN) | "hinge"
    diffaugment: str = ""  # e.g. "translation,cutout,color"; empty: off
    ema_decay: float = 0.999  # 0 disables the average (the raw generator is exported)
    export_dtype: str = "fp32"  # "fp32" | "fp16" (half the file, for shipped models)
    precision: str = "fp32"  # "bf16": autocast the forward passes (weights, Adam stay fp32)
    labels: str = "genres"  # the label vocabulary (a labels preset) the generator is conditioned on

    def __post_init__(self) -> None:
        super().__post_init__()
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, not {self.betas!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.export_dtype not in ("fp32", "fp16"):
            raise ValueError("export_dtype must be fp32 or fp16")
        check_precision(self.precision)
        for name in ("batch_size", "z_dim", "ngf", "ndf"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must be in [0, 1)")
        make_diffaugment(self.diffaugment)  # validates the names; cheap

    @classmethod
    def from_dict(cls, recipe: dict[str, Any] | None) -> GenreCGANRecipe:
        return recipe_from_dict(cls, recipe, "genre-cgan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(d["betas"])
        return d


def d_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on raw scores: real -> 1, fake -> 0 (BCE), or hinge margins."""
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def g_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss (non-saturating for BCE)."""
    if loss == "hinge":
        return -fake.mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


@torch.no_grad()
def recalibrated(net: GenreGenerator, labels: torch.Tensor, batches: int = 8) -> GenreGenerator:
    """A copy of ``net`` whose batch-norm statistics are re-estimated for *its* weights.

    The averaged generator never ran in train mode, so the running statistics it copied from the
    raw generator do not match it; sampling in eval mode would drift. ``labels`` are rows to draw
    conditions from (the genres seen in training); the draws are seeded, so this is repeatable.
    """
    net = copy.deepcopy(net)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns or len(labels) == 0:
        return net.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the batches below
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(0)
    net.train()
    n = max(64, len(labels))
    for _ in range(batches):
        rows = labels[torch.randint(len(labels), (n,), generator=gen)].to(device)
        net(torch.randn(n, net.z_dim, generator=gen).to(device), rows)
    for bn in bns:
        bn.momentum = 0.1
    return net.eval()


class GenreCGANTask:
    """The genre cGAN's step, state, sample grid and export for the generic harness."""

    LABEL_BANK = 256  # genre rows kept for re-estimating batch norm at export

    def __init__(
        self,
        recipe: GenreCGANRecipe | dict[str, Any] | None,
        labels: LabelSet | list[str],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        init_from: Weights | None = None,
    ):
        r = recipe if isinstance(recipe, GenreCGANRecipe) else GenreCGANRecipe.from_dict(recipe)
        self.labels = labels if isinstance(labels, LabelSet) else LabelSet(tuple(labels))
        self.label_names = list(self.labels.names)
        self.device = torch.device(device)
        pixels = r.batch_size * WIDTH * HEIGHT  # "auto" by the pixels of a step
        self.precision = training_precision(self.device, r.precision, pixels)
        self.init_from = None
        if init_from is not None:
            r = self._init_recipe(r, init_from)
        self.recipe = r
        torch.manual_seed(seed)  # initial weights: reproducible per seed
        n = len(self.label_names)
        self.G = GenreGenerator(GenreConfig(z_dim=r.z_dim, ngf=r.ngf), n)
        if init_from is not None:
            self.G.load_state_dict({k: v.float() for k, v in init_from.tensors.items()})
            self.init_from = str(init_from.path or init_from.arch)
        self.G = self.G.to(self.device).train()
        self.D = GenreDiscriminator(n, r.ndf).to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # batch norm statistics stay per rank (no SyncBN, no broadcast each forward); rank 0's
        # are the ones exported
        self.g, self.d = distributed.wrap_ddp(
            (self.G, self.D), self.device, forward_sync_buffers=False
        )
        self.opt_G = torch.optim.Adam(self.G.parameters(), r.lr_g, betas=r.betas, foreach=True)
        self.opt_D = torch.optim.Adam(self.D.parameters(), r.lr_d, betas=r.betas, foreach=True)
        aug = make_diffaugment(r.diffaugment)
        self.augment = aug.to(self.device) if aug is not None else None
        self.label_bank = torch.zeros(0, n, device=self.device)  # on the device: no host sync
        self.steps_done = 0
        self._sampler: GenreGenerator | None = None  # the recalibrated average, until a change
        self.metric_cache: dict[str, Any] = {}  # the extractor and the held-out features

    def _init_recipe(self, r: GenreCGANRecipe, init_from: Weights) -> GenreCGANRecipe:
        """Start the generator from a genre-cgan weight file: its shape (z_dim, ngf) wins over
        the recipe's; its labels must be this run's, in the same order."""
        if init_from.arch != ARCH or init_from.header.get("kind") != Kind.GENERATOR:
            raise ValueError(f"--init-from must be a {ARCH} generator, not {init_from.arch!r}")
        if list(init_from.labels) != self.label_names:
            raise ValueError(
                f"--init-from has labels {', '.join(init_from.labels)}; this run's vocabulary "
                f"{r.labels!r} has {', '.join(self.label_names)}"
            )
        cfg = GenreConfig.from_dict(init_from.config)
        return replace(r, z_dim=cfg.z_dim, ngf=cfg.ngf)

    def _view(self, x01: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees: augmented (when on) and scaled to [-1, 1]."""
        if self.augment is not None:
            x01 = self.augment(x01)
        return x01 * 2 - 1

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        r = self.recipe
        self._sampler = None
        real, y = batch["image"], batch["labels"]
        z = torch.randn(len(real), r.z_dim, device=real.device)
        with autocast(self.device, self.precision):  # the losses read the scores as fp32
            fake = self.g(z, y).float().add(1).mul(0.5)  # [0, 1] like the real batch
            real_s = self.d(self._view(real), y).float()
            fake_s = self.d(self._view(fake.detach()), y).float()
        self.opt_D.zero_grad(set_to_none=True)
        loss_d = d_loss(r.loss, real_s, fake_s)
        loss_d.backward()
        self.opt_D.step()

        self.D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(self.device, self.precision):  # D fixed: no DDP wrapper needed
            fake_s = self.D(self._view(fake), y).float()
        loss_g = g_loss(r.loss, fake_s)
        loss_g.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)

        update_ema(self.G_ema, self.G, self.recipe.ema_decay, step)
        self.label_bank = torch.cat([y.detach().float(), self.label_bank])[: self.LABEL_BANK]
        self.steps_done = step + 1
        return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach()}  # the harness syncs on log

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "label_bank": self.label_bank.cpu(),
            "label_names": list(self.label_names),
            "recipe": self.recipe.to_dict(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["label_names"]) != self.label_names:
            raise ValueError("checkpoint genres differ from this task's")
        for name in ("G", "D", "G_ema", "opt_G", "opt_D"):
            getattr(self, name).load_state_dict(state[name])
        self.label_bank = state["label_bank"].float().to(self.device)
        self.steps_done = int(state.get("steps_done", 0))
        self._sampler = None

    # -- samples and export ----------------------------------------------------------------------
    def sampler(self) -> GenreGenerator:
        """The generator to sample from: the average with its batch norm re-estimated, once per
        state (the last step's sample grid and the export share it; the estimate is seeded, so
        a second one would be the same net)."""
        if self._sampler is None:
            self._sampler = recalibrated(self.G_ema, self.label_bank)
        return self._sampler

    @torch.no_grad()
    def sample_grid(self, batch: dict[str, torch.Tensor], columns: int = 6) -> torch.Tensor:
        """A first row of real posters, then one row per genre with the same fixed noise."""
        net = self.sampler()
        n = len(self.label_names)
        return label_grid(
            net, batch["image"], n, net.z_dim, self.device, columns, names=self.label_names
        )

    def metrics(self, held: dict[str, torch.Tensor]) -> dict[str, float]:
        """FID, KID, precision, recall and label consistency (:func:`generator_metrics`, those
        of ``posterforge eval``) of the sampled generator on the held-out posters."""
        net = self.sampler()

        def sample(z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
            return net(z, y).add(1).mul(0.5)

        names, z_dim, cache = self.label_names, net.z_dim, self.metric_cache
        return generator_metrics(sample, z_dim, held["image"], held["labels"], names, cache=cache)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        net = self.sampler()
        dtype = torch.float16 if self.recipe.export_dtype == "fp16" else torch.float32
        tensors = {
            k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu())
            for k, v in net.state_dict().items()
        }
        provenance = {"trainer": ARCH, "steps": self.steps_done, "recipe": self.recipe.to_dict()}
        if self.init_from is not None:
            provenance["init_from"] = self.init_from
        vocabulary = {k: v for k, v in self.labels.as_dict().items() if k != "names"}
        header = make_header(
            Kind.GENERATOR,
            ARCH,
            net.config.to_dict(),
            labels=self.label_names,
            vocabulary=vocabulary,
            provenance=provenance,
        )
        return tensors, header


def make_task(
    recipe: dict[str, Any],
    *,
    device: str = "cpu",
    seed: int = 0,
    init_from: Weights | None = None,
    ctx: Context,
) -> GenreCGANTask:
    """The family's task: the nets for the recipe's label vocabulary (a labels preset, or the
    names a run took from its data)."""
    r = GenreCGANRecipe.from_dict(recipe)
    return GenreCGANTask(r, r.vocabulary(ctx), device=device, seed=seed, init_from=init_from)


def make_data(
    inputs: dict[str, Path],
    recipe: dict[str, Any],
    *,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    ctx: Context,
) -> LabelledImageStream:
    """Posters of ``inputs["data"]`` labelled by ``inputs["labels"]`` (CSV/JSONL) or by their
    sub-folders, balanced by the recipe, fitted to 64x128."""
    r = GenreCGANRecipe.from_dict(recipe)
    shard = {"seed": seed, "rank": rank, "world_size": world_size}
    return r.stream(inputs, r.batch_size, (WIDTH, HEIGHT), ctx=ctx, **shard)


__all__ = ["ARCH", "GenreCGANRecipe", "GenreCGANTask", "make_data", "make_task"]
