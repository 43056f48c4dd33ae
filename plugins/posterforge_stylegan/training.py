"""Training the StyleGAN-style poster generator as a
:class:`~posterforge.training.task.TrainingTask`.

One step (StyleGAN2-ADA's recipe, simplified):

- **D**: logistic loss on augmented real posters with their labels and on augmented generated
  ones with the same labels; every ``r1_interval`` steps the lazy R1 penalty on the real images
  (``r1_gamma / 2 * interval``). The signs of D's real logits drive ADA's probability.
- **G**: non-saturating loss through the fixed D, with style mixing; every ``pl_interval`` steps
  the optional path-length penalty (``pl_weight > 0``).
- The exponential moving average of G is what gets sampled and exported; its buffers (the
  per-label ``w_avg`` for truncation, the constant noise) follow the trained G's.

Every random draw (noise, mixing, augmentation) comes from the global torch RNG, which the
harness saves and restores with each checkpoint; ADA's probability and counters are part of the
task's state. Resume therefore continues bit for bit, ADA included.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

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
    make_header,
    recipe_from_dict,
    training_precision,
    update_ema,
)
from posterforge_stylegan import losses
from posterforge_stylegan.augment import AdaptiveAugment
from posterforge_stylegan.config import (
    AugmentConfig,
    StyleDiscriminatorConfig,
    StyleGeneratorConfig,
)
from posterforge_stylegan.discriminator import StyleDiscriminator
from posterforge_stylegan.generator import StyleGenerator

if TYPE_CHECKING:
    from posterforge.plugin import Context, Weights

ARCH = "stylegan"


@dataclass
class StyleGANRecipe(LabelledRecipe):
    """The training recipe, read from the ``[model]`` table of a TOML recipe (the data keys,
    ``fit``, ``balance``, ``labels_from_data``, ..., are those of :class:`LabelledRecipe`)."""

    image_size: tuple[int, int] = (64, 128)  # (W, H); (128, 256) for the larger posters
    batch_size: int = 32
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    channel_base: int = 4096
    channel_max: int = 128
    d_channel_base: int | None = None  # default: channel_base
    d_channel_max: int | None = None  # default: channel_max
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 0.1  # small images, small gamma (StyleGAN2-ADA uses 0.01-1 below 256)
    r1_interval: int = 16
    pl_weight: float = 0.0  # path-length regularisation; 0 disables it
    pl_interval: int = 4
    mixing_prob: float = 0.9
    ema_decay: float = 0.999
    ada_target: float | None = 0.6  # None: fixed probability ada_p
    ada_p: float = 0.0  # the initial probability
    ada_interval: int = 4
    ada_speed_kimg: float = 100.0  # images for p to move by 1 (StyleGAN2-ADA: 500k)
    labels: str = "genres"  # the label vocabulary (a labels preset)
    precision: str = "fp32"  # "bf16": autocast the forward passes (R1 and weights stay fp32)
    export_dtype: str = "fp32"
    mbstd_group: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        self.image_size = tuple(int(v) for v in self.image_size)  # type: ignore[assignment]
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if len(self.image_size) != 2 or len(self.betas) != 2:
            raise ValueError("image_size and betas are two numbers each")
        for name in ("batch_size", "z_dim", "w_dim", "mapping_layers", "r1_interval"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive")
        if self.pl_interval < 1 or self.ada_interval < 1:
            raise ValueError("pl_interval and ada_interval must be positive")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must be in [0, 1)")
        check_precision(self.precision)
        if self.export_dtype not in ("fp32", "fp16"):
            raise ValueError("export_dtype must be fp32 or fp16")

    @classmethod
    def from_dict(cls, recipe: dict[str, Any] | None) -> StyleGANRecipe:
        return recipe_from_dict(cls, recipe, "stylegan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"], d["betas"] = list(d["image_size"]), list(d["betas"])
        return d

    def generator_config(self, c_dim: int) -> StyleGeneratorConfig:
        return StyleGeneratorConfig(
            z_dim=self.z_dim,
            c_dim=c_dim,
            w_dim=self.w_dim,
            image_size=self.image_size,
            mapping_layers=self.mapping_layers,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
        )

    def discriminator_config(self, g: StyleGeneratorConfig) -> StyleDiscriminatorConfig:
        """The discriminator for the generator ``g`` (its labels and size, which may be an
        ``--init-from`` file's rather than this recipe's)."""
        return StyleDiscriminatorConfig(
            c_dim=g.c_dim,
            image_size=g.image_size,
            channel_base=self.d_channel_base or self.channel_base,
            channel_max=self.d_channel_max or self.channel_max,
            mbstd_group=self.mbstd_group,
        )

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(
            p=self.ada_p,
            target=self.ada_target,
            interval=self.ada_interval,
            speed_kimg=self.ada_speed_kimg,
        )


class StyleGANTask:
    """The StyleGAN family's step, state, sample grid and export for the generic harness."""

    def __init__(
        self,
        recipe: StyleGANRecipe | dict[str, Any] | None,
        labels: LabelSet | list[str],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        init_from: Weights | None = None,
    ):
        r = recipe if isinstance(recipe, StyleGANRecipe) else StyleGANRecipe.from_dict(recipe)
        self.recipe = r
        self.labels = labels if isinstance(labels, LabelSet) else LabelSet(tuple(labels))
        self.label_names = list(self.labels.names)
        self.device = torch.device(device)
        w, h = r.image_size  # "auto" by the pixels of a step
        self.precision = training_precision(self.device, r.precision, r.batch_size * w * h)
        n = len(self.label_names)
        torch.manual_seed(seed)  # initial weights: reproducible per seed
        g_config = r.generator_config(n)
        self.init_from = None
        if init_from is not None:
            g_config = self._check_init(init_from)
        self.G = StyleGenerator(g_config)
        if init_from is not None:
            self.G.load_state_dict({k: v.float() for k, v in init_from.tensors.items()})
            self.init_from = str(init_from.path or init_from.arch)
        self.D = StyleDiscriminator(r.discriminator_config(g_config))
        self.G.to(self.device).train()
        self.D.to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.g, self.d = distributed.wrap_ddp((self.G, self.D), self.device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), r.lr_g, betas=r.betas, foreach=True)
        # lazy R1: the optimiser's moments see the regularised steps at their real frequency
        ratio = r.r1_interval / (r.r1_interval + 1)
        betas_d = (r.betas[0] ** ratio, r.betas[1] ** ratio)
        self.opt_D = torch.optim.Adam(
            self.D.parameters(), r.lr_d * ratio, betas=betas_d, foreach=True
        )
        self.augment = AdaptiveAugment(r.augment_config()).to(self.device)
        self.pl_mean = torch.zeros((), device=self.device)
        self.steps_done = 0
        self.metric_cache: dict[str, Any] = {}  # the extractor and the held-out features

    def _check_init(self, init_from: Weights) -> StyleGeneratorConfig:
        if init_from.arch != ARCH or init_from.header.get("kind") != Kind.GENERATOR:
            raise ValueError(f"--init-from must be a {ARCH} generator, not {init_from.arch!r}")
        if list(init_from.labels) != self.label_names:
            raise ValueError(
                f"--init-from has labels {', '.join(init_from.labels)}; this run's vocabulary "
                f"{self.recipe.labels!r} has {', '.join(self.label_names)}"
            )
        return StyleGeneratorConfig.from_dict(init_from.config)  # its shape wins the recipe's

    def _autocast(self) -> torch.autocast:
        return autocast(self.device, self.precision)

    # -- the step --------------------------------------------------------------------------------
    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor | float]:
        r = self.recipe
        real, y = batch["image"] * 2 - 1, batch["labels"].float()
        out: dict[str, torch.Tensor | float] = {}

        # discriminator: logistic loss, lazy R1 on the real images before augmentation
        with torch.no_grad(), self._autocast():
            z = torch.randn(len(real), r.z_dim, device=real.device)
            fake = self.G.synthesis(self.G.mixed_ws(z, y, mixing_prob=r.mixing_prob)).float()
        r1_step = step % r.r1_interval == 0 and r.r1_gamma > 0
        real_in = real.detach().requires_grad_(r1_step)
        with self._autocast():
            logits_real = self.d(self.augment(real_in), y).float()
            logits_fake = self.d(self.augment(fake), y).float()
            loss_d = losses.d_logistic(logits_real, logits_fake)
        if r1_step:
            with torch.autocast(self.device.type, enabled=False):
                r1 = losses.r1_penalty(real_in, logits_real)
            loss_d = loss_d + r1 * (r.r1_gamma / 2 * r.r1_interval)
            out["r1"] = r1.detach()
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()
        self._adapt(logits_real, len(real))

        # generator: non-saturating loss through the fixed discriminator, with style mixing
        self.D.requires_grad_(False)
        z = torch.randn(len(real), r.z_dim, device=real.device)
        with self._autocast():
            ws = self.G.mixed_ws(z, y, mixing_prob=r.mixing_prob)
            fake = self.G.synthesis(ws)
            loss_g = losses.g_nonsaturating(self.D(self.augment(fake), y).float())
        if r.pl_weight > 0 and step % r.pl_interval == 0:
            pl, self.pl_mean = losses.path_length_penalty(fake.float(), ws, self.pl_mean)
            loss_g = loss_g + pl * (r.pl_weight * r.pl_interval)
            out["path_length"] = pl.detach()
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)

        update_ema(self.G_ema, self.G, r.ema_decay, step)  # w_avg and const noise follow G
        self.steps_done = step + 1
        out.update(
            loss_D=loss_d.detach(), loss_G=loss_g.detach(), ada_p=self.augment.p.detach().clone()
        )
        return out

    def _adapt(self, logits_real: torch.Tensor, batch_size: int) -> None:
        """ADA: the signs of the real logits move p toward the target (summed over ranks)."""
        self.augment.accumulate(logits_real)
        if distributed.world_size() > 1:
            import torch.distributed as dist

            for t in (self.augment.sign_sum, self.augment.sign_count):
                dist.all_reduce(t)
        self.augment.adjust(batch_size * distributed.world_size())

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "augment": self.augment.state_dict(),
            "pl_mean": self.pl_mean.detach().cpu(),
            "label_names": list(self.label_names),
            "generator_config": self.G.config.to_dict(),
            "recipe": self.recipe.to_dict(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["label_names"]) != self.label_names:
            raise ValueError("checkpoint labels differ from this task's")
        if dict(state["generator_config"]) != self.G.config.to_dict():
            raise ValueError(
                f"checkpoint generator {state['generator_config']} is not this task's "
                f"{self.G.config.to_dict()}"
            )
        for name in ("G", "D", "G_ema", "opt_G", "opt_D", "augment"):
            getattr(self, name).load_state_dict(state[name])
        self.pl_mean = state["pl_mean"].to(self.device)
        self.steps_done = int(state.get("steps_done", 0))

    # -- samples and export ----------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: dict[str, torch.Tensor], columns: int = 6) -> torch.Tensor:
        """A row of real posters, then one row per label with the same fixed noise."""

        def sample(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.G_ema(z, y, noise_mode="const")

        n = len(self.label_names)
        z_dim, names = self.G.z_dim, self.label_names
        return label_grid(sample, batch["image"], n, z_dim, self.device, columns, names=names)

    def metrics(self, held: dict[str, torch.Tensor]) -> dict[str, float]:
        """FID, KID, precision, recall and label consistency (:func:`generator_metrics`, those
        of ``posterforge eval``) of the averaged generator on the held-out posters."""

        def sample(z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
            return self.G_ema(z, y, noise_mode="const").add(1).mul(0.5)

        names, z_dim, cache = self.label_names, self.G.z_dim, self.metric_cache
        return generator_metrics(sample, z_dim, held["image"], held["labels"], names, cache=cache)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        dtype = torch.float16 if self.recipe.export_dtype == "fp16" else torch.float32
        tensors = {
            k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu())
            for k, v in self.G_ema.state_dict().items()
        }
        provenance: dict[str, Any] = {
            "trainer": ARCH,
            "steps": self.steps_done,
            "recipe": self.recipe.to_dict(),
            "ada_p": float(self.augment.p),
        }
        if self.init_from is not None:
            provenance["init_from"] = self.init_from
        vocabulary = {k: v for k, v in self.labels.as_dict().items() if k != "names"}
        header = make_header(
            Kind.GENERATOR,
            ARCH,
            self.G.config.to_dict(),
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
) -> StyleGANTask:
    r = StyleGANRecipe.from_dict(recipe)
    return StyleGANTask(r, r.vocabulary(ctx), device=device, seed=seed, init_from=init_from)


def make_data(
    inputs: dict[str, Path],
    recipe: dict[str, Any],
    *,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    ctx: Context,
) -> LabelledImageStream:
    """Posters and labels exactly as the genre cGAN reads them, fitted to the recipe's size."""
    r = StyleGANRecipe.from_dict(recipe)
    shard = {"seed": seed, "rank": rank, "world_size": world_size}
    return r.stream(inputs, r.batch_size, r.image_size, ctx=ctx, **shard)


__all__ = ["ARCH", "StyleGANRecipe", "StyleGANTask", "make_data", "make_task"]
