"""CycleGAN training (Zhu et al. 2017) as a :class:`~posterforge.training.task.TrainingTask`.

Two ResNet generators ``G_AB``, ``G_BA`` and two PatchGAN discriminators ``D_A``, ``D_B``; one Adam
for both generators and one for both discriminators; LSGAN or WGAN-GP (optionally switching from
the first to the second at a given step), cycle and identity losses weighted by schedules, image
pools for the discriminators, optional gradient clipping, and kornia augmentation on the device.

The generic harness (:mod:`posterforge.training.harness`) drives :meth:`CycleGANTask.step` with
batches ``{"A": (B, 3, S, S), "B": ...}`` in ``[0, 1]`` from an :class:`UnpairedStream`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from posterforge.plugin import (
    Kind,
    Schedule,
    autocast,
    check_precision,
    distributed,
    make_augment,
    make_header,
    recipe_from_dict,
    training_precision,
)
from posterforge_cyclegan import losses
from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.data import UnpairedStream
from posterforge_cyclegan.discriminator import PatchDiscriminator
from posterforge_cyclegan.importers import ARCH
from posterforge_cyclegan.network import ResnetGenerator
from posterforge_cyclegan.pool import ImagePool
from posterforge_cyclegan.scoring import eval_mode, scores
from posterforge_cyclegan.winograd import kernel_cache

if TYPE_CHECKING:
    from pathlib import Path

    from posterforge.plugin import Weights

LOSSES = ("lsgan", "wgan-gp")
_SCHEDULES = ("lr", "cycle_weight", "identity_weight", "grad_clip")
_PAIRS = ("betas", "crop_scale")


def _default_lr() -> Schedule:
    return Schedule(2e-4, end=0.0, decay_start=100_000, decay_steps=100_000)


@dataclass
class CycleGANRecipe:
    """The training recipe; :meth:`from_dict` reads it from a (TOML) dict, where schedules are
    numbers or ``{start, end, decay_start, decay_steps}`` tables."""

    size: int = 256  # training crop
    load_size: int = 286  # images are loaded at this size, then randomly cropped to `size`
    batch_size: int = 1
    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    affine: bool = False
    pool_size: int = 50
    lr: Schedule = field(default_factory=_default_lr)
    betas: tuple[float, float] = (0.5, 0.999)
    loss: str = "lsgan"  # "lsgan" | "wgan-gp"
    wgan_from_step: int | None = None  # switch from LSGAN to WGAN-GP at this step
    gp_weight: float = 10.0
    cycle_weight: Schedule = field(default_factory=lambda: Schedule(10.0))
    identity_weight: Schedule = field(default_factory=lambda: Schedule(5.0))
    grad_clip: Schedule | None = None  # max grad norm for every net
    flip: bool = True
    crop_scale: tuple[float, float] = (0.5, 1.0)
    color_jitter: bool = False  # off by default: colour is the style being learnt
    # CPU fp32: Winograd residual convs and a channels-last head conv, forward and backward
    # (ResnetGenerator.fast_cpu_training); no effect on CUDA, off gives oneDNN's convs
    fast_cpu: bool = True
    # "bf16": autocast the forward passes to bfloat16 (CPUs with AVX512-BF16/AMX, recent GPUs);
    # weights, optimiser state, gradient penalty and image pools stay fp32
    precision: str = "fp32"
    # images of each folder held out (seeded) for the metrics every train.eval_every steps
    eval_images: int = 0

    def __post_init__(self) -> None:
        for name in _SCHEDULES:
            value = getattr(self, name)
            if value is not None or name != "grad_clip":
                setattr(self, name, Schedule.parse(value))
        for name in _PAIRS:
            pair = tuple(float(v) for v in getattr(self, name))
            if len(pair) != 2:
                raise ValueError(f"{name} must be two numbers, not {getattr(self, name)!r}")
            setattr(self, name, pair)
        check_precision(self.precision)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.wgan_from_step is not None:
            self.wgan_from_step = int(self.wgan_from_step)
        if int(self.eval_images) < 0:
            raise ValueError(f"eval_images must not be negative, not {self.eval_images}")
        for name in ("size", "load_size", "batch_size", "ngf", "n_blocks", "ndf"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive")
        if self.size % 4 or self.size < 32:
            # two stride-2 stages in G; the PatchGAN's instance norms need 2x2 maps at 1/8 size
            raise ValueError(f"size must be a multiple of 4 and at least 32, not {self.size}")
        if self.load_size < self.size:
            raise ValueError(f"load_size {self.load_size} is smaller than size {self.size}")
        if self.pool_size < 0:
            raise ValueError("pool_size must not be negative")

    @classmethod
    def from_dict(cls, recipe: dict[str, Any] | None) -> CycleGANRecipe:
        return recipe_from_dict(cls, recipe, "CycleGAN")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON- and ``weights_only``-safe) that :meth:`from_dict` reads back."""
        d = asdict(self)  # Schedules become dicts
        for name in _PAIRS:
            d[name] = list(d[name])
        return d

    def loss_at(self, step: int) -> str:
        if self.wgan_from_step is not None and step >= self.wgan_from_step:
            return "wgan-gp"
        return self.loss


def init_weights(net: nn.Module, generator: torch.Generator | None = None) -> None:
    """The reference initialisation: conv weights ~ N(0, 0.02), biases 0; norm weights 1, bias 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _unwrap(net: nn.Module) -> nn.Module:
    return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net


def _params(*nets: nn.Module) -> list[nn.Parameter]:
    return list(itertools.chain.from_iterable(n.parameters() for n in nets))


def _set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


class CycleGANTask:
    """CycleGAN's training step, state and export for the generic harness.

    ``init_from`` (our weight format, arch ``cyclegan-resnet``) initialises *both* generators and
    sets their config (ngf, n_blocks, affine), overriding the recipe's. ``seed`` makes the
    initialisation of the remaining nets reproducible. Under ``torch.distributed`` the four nets
    are wrapped in ``DistributedDataParallel``; the gradient penalty and the generators' view of
    the discriminators use the unwrapped modules (see :meth:`_d_loss`).
    """

    def __init__(
        self,
        recipe: CycleGANRecipe | dict[str, Any] | None = None,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        init_from: Weights | None = None,
    ):
        recipe = recipe if isinstance(recipe, CycleGANRecipe) else CycleGANRecipe.from_dict(recipe)
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(seed)
        if init_from is not None:
            if init_from.arch != ARCH:
                raise ValueError(f"init_from must be a {ARCH} translator, not {init_from.arch!r}")
            cfg = init_from.config
            recipe = replace(
                recipe,
                ngf=int(cfg.get("ngf", recipe.ngf)),
                n_blocks=int(cfg.get("n_blocks", recipe.n_blocks)),
                affine=bool(cfg.get("affine", recipe.affine)),
            )
            g_config = ResnetConfig.from_dict(cfg)
        else:
            g_config = ResnetConfig(ngf=recipe.ngf, n_blocks=recipe.n_blocks, affine=recipe.affine)
        self.recipe = recipe
        self.init_from = None if init_from is None else str(init_from.path or init_from.arch)
        pixels = recipe.batch_size * recipe.size**2  # "auto" by the pixels of a step
        self.precision = training_precision(self.device, recipe.precision, pixels)

        self.G_AB, self.G_BA = ResnetGenerator(g_config), ResnetGenerator(g_config)
        self.D_A, self.D_B = PatchDiscriminator(recipe.ndf), PatchDiscriminator(recipe.ndf)
        for net in (self.G_AB, self.G_BA, self.D_A, self.D_B):
            init_weights(net, gen)
        if init_from is not None:
            for g in (self.G_AB, self.G_BA):
                g.load_state_dict(init_from.tensors)
        for net in (self.G_AB, self.G_BA, self.D_A, self.D_B):
            net.to(self.device).train()
        if recipe.fast_cpu and self.device.type == "cpu":
            for g in (self.G_AB, self.G_BA):
                g.fast_cpu_training()

        # what the step calls: DDP wrappers when distributed, the modules themselves otherwise
        self.g_ab, self.g_ba, self.d_a, self.d_b = distributed.wrap_ddp(
            (self.G_AB, self.G_BA, self.D_A, self.D_B), self.device
        )
        lr0 = recipe.lr(0)
        self.opt_G = torch.optim.Adam(
            _params(self.G_AB, self.G_BA), lr=lr0, betas=recipe.betas, foreach=True
        )
        self.opt_D = torch.optim.Adam(
            _params(self.D_A, self.D_B), lr=lr0, betas=recipe.betas, foreach=True
        )
        self.pool_A, self.pool_B = ImagePool(recipe.pool_size), ImagePool(recipe.pool_size)
        self.augment = make_augment(
            recipe.size, flip=recipe.flip, scale=recipe.crop_scale, color_jitter=recipe.color_jitter
        ).to(self.device)
        self.steps_done = 0

    # -- the step --------------------------------------------------------------------------------
    def _clip(self, params: list[nn.Parameter], max_norm: float | None) -> torch.Tensor | None:
        if max_norm is None:
            return None
        return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)

    def _d_loss(
        self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor, mode: str
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # one forward for real and fake: instance norm keeps the samples independent
        scores = d(torch.cat([real, fake]))
        real_s, fake_s = scores[: len(real)], scores[len(real) :]
        if mode == "lsgan":
            return losses.d_lsgan(real_s, fake_s), None
        # The penalty (a double backward) runs in fp32, on the unwrapped module. Checked with 2
        # gloo ranks (torch 2.14): the critic's gradients match a single-process reference
        # whether the penalty goes through the DDP wrapper or not; unwrapped saves a second DDP
        # forward (and buffer broadcast), and the one backward of the sum still hands every
        # gradient to DDP's all-reduce.
        with torch.autocast(self.device.type, enabled=False):
            gp = losses.gradient_penalty(_unwrap(d), real.float(), fake.float())
        return losses.d_wgan(real_s, fake_s) + self.recipe.gp_weight * gp, gp

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor | float]:
        with kernel_cache():  # Winograd kernels reused across the G passes (fast_cpu only)
            return self._step(batch, step)

    def _autocast(self) -> torch.autocast:
        return autocast(self.device, self.precision)

    def _step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor | float]:
        r = self.recipe
        mode = r.loss_at(step)
        lr, cw, iw = r.lr(step), r.cycle_weight(step), r.identity_weight(step)
        clip = None if r.grad_clip is None else r.grad_clip(step)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        a = self.augment(batch["A"]).mul(2).sub(1)
        b = self.augment(batch["B"]).mul(2).sub(1)

        # generators: the discriminators are fixed here, so use the modules without DDP
        g_adv = losses.g_lsgan if mode == "lsgan" else losses.g_wgan
        _set_requires_grad((self.D_A, self.D_B), False)
        with self._autocast():
            fake_b, fake_a = self.g_ab(a), self.g_ba(b)
            adv = g_adv(self.D_B(fake_b)) + g_adv(self.D_A(fake_a))
            cyc = losses.cycle(self.g_ba(fake_b), a) + losses.cycle(self.g_ab(fake_a), b)
            if iw != 0:
                idt = losses.identity(self.g_ab(b), b) + losses.identity(self.g_ba(a), a)
            else:
                idt = torch.zeros((), device=a.device)
            loss_g = (adv + cw * cyc + iw * idt).float()
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        norm_g = self._clip(self.opt_G.param_groups[0]["params"], clip)
        self.opt_G.step()
        _set_requires_grad((self.D_A, self.D_B), True)

        # discriminators on a mix of current and past fakes
        pooled_b = self.pool_B.query(fake_b.detach().float())
        pooled_a = self.pool_A.query(fake_a.detach().float())
        with self._autocast():
            loss_da, gp_a = self._d_loss(self.d_a, a, pooled_a, mode)
            loss_db, gp_b = self._d_loss(self.d_b, b, pooled_b, mode)
            loss_d = (loss_da + loss_db).float()
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        norm_d = self._clip(self.opt_D.param_groups[0]["params"], clip)
        self.opt_D.step()
        self.steps_done = step + 1

        names = ["loss_G", "loss_D", "adv", "cycle", "identity"]
        values = [loss_g, loss_d, adv, cyc, idt]
        if gp_a is not None and gp_b is not None:
            names.append("gp")
            values.append(gp_a + gp_b)
        if norm_g is not None and norm_d is not None:
            names += ["grad_norm_G", "grad_norm_D"]
            values += [norm_g, norm_d]
        # tensors: the harness reads them (one host sync) only on the steps it logs
        out: dict[str, torch.Tensor | float] = {
            k: v.detach().float() for k, v in zip(names, values, strict=True)
        }
        out.update(lr=lr, cycle_weight=cw, identity_weight=iw, wgan=float(mode == "wgan-gp"))
        if clip is not None:
            out["grad_clip"] = clip
        return out

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "G_AB": self.G_AB.state_dict(),
            "G_BA": self.G_BA.state_dict(),
            "D_A": self.D_A.state_dict(),
            "D_B": self.D_B.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "pool_A": self.pool_A.state_dict(),
            "pool_B": self.pool_B.state_dict(),
            "recipe": self.recipe.to_dict(),
            "generator_config": self.G_AB.config.to_dict(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if dict(state["generator_config"]) != self.G_AB.config.to_dict():
            raise ValueError(
                f"checkpoint generators {state['generator_config']} do not match "
                f"this task's {self.G_AB.config.to_dict()}"
            )
        for name in ("G_AB", "G_BA", "D_A", "D_B"):
            getattr(self, name).load_state_dict(state[name])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.pool_A.load_state_dict(state["pool_A"], self.device)
        self.pool_B.load_state_dict(state["pool_B"], self.device)
        self.steps_done = int(state.get("steps_done", 0))

    # -- samples and export ----------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: dict[str, torch.Tensor], n: int = 4) -> torch.Tensor:
        """One row per sample: A, G_AB(A), G_BA(G_AB(A)) | B, G_BA(B), G_AB(G_BA(B))."""
        from torchvision.utils import make_grid

        with eval_mode(self.G_AB, self.G_BA):
            a = _center_crop(batch["A"][:n], self.recipe.size).to(self.device) * 2 - 1
            b = _center_crop(batch["B"][:n], self.recipe.size).to(self.device) * 2 - 1
            fake_b, fake_a = self.G_AB(a), self.G_BA(b)
            rec_a, rec_b = self.G_BA(fake_b), self.G_AB(fake_a)
        cols = [a, fake_b, rec_a, b, fake_a, rec_b]
        tiles = torch.stack(cols, dim=1).flatten(0, 1).add(1).mul(0.5).clamp(0, 1)
        return make_grid(tiles.float().cpu(), nrow=len(cols), padding=2, pad_value=1.0)

    def metrics(self, held: dict[str, torch.Tensor]) -> dict[str, float]:
        """FID both ways and the cycle error on the held-out images (eval mode, as sampled)."""
        return scores(self.G_AB, self.G_BA, held, self.device)

    def _export(self, net: ResnetGenerator, direction: str) -> tuple[dict, dict[str, Any]]:
        provenance = {
            "trainer": "cyclegan",
            "direction": direction,
            "steps": self.steps_done,
            "recipe": self.recipe.to_dict(),
        }
        if self.init_from is not None:
            provenance["init_from"] = self.init_from
        tensors = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        header = make_header(Kind.TRANSLATOR, ARCH, net.config.to_dict(), provenance=provenance)
        return tensors, header

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``G_AB`` (A -> B) in our weight format."""
        return self._export(self.G_AB, "A->B")

    def export_reverse(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``G_BA`` (B -> A) in our weight format."""
        return self._export(self.G_BA, "B->A")


def make_task(
    recipe: dict[str, Any],
    *,
    device: str = "cpu",
    seed: int = 0,
    init_from: Weights | None = None,
) -> CycleGANTask:
    """The family's task (both generators start from ``init_from`` when given)."""
    return CycleGANTask(recipe, device=device, seed=seed, init_from=init_from)


def make_data(
    inputs: dict[str, Path],
    recipe: dict[str, Any],
    *,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> UnpairedStream:
    """Unpaired batches from the image folders ``inputs["a"]`` and ``inputs["b"]``."""
    missing = [k for k in ("a", "b") if k not in inputs]
    if missing:
        raise ValueError(f"cyclegan training needs image folders {missing} (domains a and b)")
    r = CycleGANRecipe.from_dict(recipe)
    a, b, held_a, held_b = UnpairedStream.held_out_split(
        inputs["a"], inputs["b"], int(r.eval_images), seed
    )
    stream = UnpairedStream(
        a, b, r.batch_size, r.load_size, seed=seed, rank=rank, world_size=world_size
    )
    stream.held_a, stream.held_b, stream.eval_size = held_a, held_b, r.size
    return stream


__all__ = [
    "CycleGANRecipe",
    "CycleGANTask",
    "UnpairedStream",
    "init_weights",
    "make_data",
    "make_task",
]
