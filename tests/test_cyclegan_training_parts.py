"""Building blocks of CycleGAN training: PatchGAN, losses, image pool, schedules."""

from __future__ import annotations

import pytest
import torch

from posterforge.training.schedules import Schedule
from posterforge.training.task import scalars
from posterforge_cyclegan import losses
from posterforge_cyclegan.discriminator import PatchDiscriminator
from posterforge_cyclegan.pool import ImagePool


def test_patchgan_sees_70x70_patches():
    d = PatchDiscriminator(ndf=8).eval()
    # instance norm mixes the whole image's statistics; the conv stack alone defines the field
    for i, layer in enumerate(d.net):
        if isinstance(layer, torch.nn.InstanceNorm2d):
            d.net[i] = torch.nn.Identity()
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    out = d(x)
    assert out.shape == (1, 1, 14, 14)
    out[0, 0, 7, 7].backward()  # one patch score
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero()
    assert int(rows.max() - rows.min()) + 1 == 70
    assert int(cols.max() - cols.min()) + 1 == 70


def test_lsgan_targets():
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert losses.d_lsgan(ones, zeros).item() == 0.0  # perfect discriminator
    assert losses.d_lsgan(zeros, ones).item() == pytest.approx(1.0)  # 0.5 * (1 + 1)
    assert losses.g_lsgan(ones).item() == 0.0
    assert losses.g_lsgan(torch.full((1, 1, 2, 2), 0.5)).item() == pytest.approx(0.25)


def test_wgan_losses_and_gradient_penalty_on_a_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4)

    def critic(x):  # linear: its gradient is w everywhere, so GP = (||w|| - 1)^2 exactly
        return x.flatten(1) @ w

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = losses.gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    unit = w / w.norm()
    assert losses.gradient_penalty(lambda x: x.flatten(1) @ unit, real, fake).item() < 1e-10
    assert losses.d_wgan(critic(real), critic(fake)).item() == pytest.approx(
        (critic(fake).mean() - critic(real).mean()).item()
    )
    assert losses.g_wgan(torch.tensor([1.0, 3.0])).item() == -2.0


def test_gradient_penalty_trains_the_critic():
    critic = torch.nn.Linear(12, 1)
    real, fake = torch.randn(8, 12), torch.randn(8, 12)
    gp = losses.gradient_penalty(
        lambda x: critic(x.flatten(1)), real.view(8, 3, 2, 2), fake.view(8, 3, 2, 2)
    )
    # create_graph=True: the penalty itself has gradients for the critic's weights
    (grad,) = torch.autograd.grad(gp, critic.weight)
    assert grad.abs().sum() > 0


def test_cycle_and_identity_are_l1():
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert losses.cycle(b, a).item() == 0.5
    assert losses.identity(a, a).item() == 0.0


def test_image_pool_mixes_history_and_resumes_exactly():
    torch.manual_seed(0)
    pool = ImagePool(size=4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling up: returns what it was given
    state = pool.state_dict()
    rng = torch.get_rng_state()
    batch = torch.full((6, 1, 1, 1), 9.0)
    out = pool.query(batch)
    assert 0 < int((out != 9).sum()) < 6  # some swapped for history, some passed through
    restored = ImagePool()
    restored.load_state_dict(state)
    torch.set_rng_state(rng)
    assert torch.equal(restored.query(batch), out)
    assert ImagePool(size=0).query(batch) is batch


def test_schedules():
    s = Schedule.parse({"start": 10, "end": 1, "decay_start": 10, "decay_steps": 9})
    assert [s(0), s(10), s(13), s(19), s(100)] == [10.0, 10.0, 7.0, 1.0, 1.0]
    assert Schedule.parse(2e-4)(10**6) == 2e-4
    assert Schedule(3.0, end=0.0, decay_start=5)(5) == 0.0  # no decay steps: a step change
    with pytest.raises(ValueError, match="bad schedule"):
        Schedule.parse({"begin": 1})


def test_fast_cpu_recipe_trains_like_onednn(monkeypatch):
    """``fast_cpu`` (the default) swaps the generators' residual convs for Winograd on the CPU;
    one step from the same state gives the same losses and weights as oneDNN's convs."""
    from posterforge_cyclegan.network import ResidualBlock
    from posterforge_cyclegan.training import CycleGANTask

    # tiny nets normally stay on oneDNN (Winograd pays only for big convs): force it here
    monkeypatch.setattr(ResidualBlock, "winograd_min_channels", 0)
    monkeypatch.setattr(ResidualBlock, "winograd_min_pixels", 0)

    tiny = dict(size=32, load_size=36, batch_size=2, ngf=8, n_blocks=2, ndf=8)
    fast = CycleGANTask(tiny, device="cpu", seed=0)
    plain = CycleGANTask({**tiny, "fast_cpu": False}, device="cpu", seed=0)
    assert fast.recipe.fast_cpu and fast.recipe.to_dict()["fast_cpu"] is True
    assert all(b.winograd for g in (fast.G_AB, fast.G_BA) for b in g.blocks)
    assert not any(b.winograd for g in (plain.G_AB, plain.G_BA) for b in g.blocks)
    assert fast.G_AB.state_dict().keys() == plain.G_AB.state_dict().keys()

    g = torch.Generator().manual_seed(1)
    batch = {"A": torch.rand(2, 3, 36, 36, generator=g), "B": torch.rand(2, 3, 36, 36, generator=g)}
    torch.manual_seed(7)  # the augmentation draws from the global generator
    got = scalars(fast.step(batch, 0))
    torch.manual_seed(7)
    ref = scalars(plain.step(batch, 0))
    for key in ("loss_G", "loss_D", "adv", "cycle", "identity"):
        assert got[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-6), key
    for name, p in fast.G_AB.state_dict().items():
        if name.endswith(("conv.bias", "conv1.bias", "conv2.bias")):
            continue  # before instance norm: zero gradient up to rounding, which Adam scales to lr
        assert torch.allclose(p, plain.G_AB.state_dict()[name], atol=2e-5), name


@pytest.mark.parametrize("loss", ["lsgan", "wgan-gp"])
def test_bf16_precision_autocasts_the_passes_and_keeps_state_fp32(loss):
    """``precision = "bf16"``: the forward passes run in bfloat16, close to fp32's losses, while
    weights, optimiser state and the image pools stay fp32 (so checkpoints do not change)."""
    from posterforge_cyclegan.training import CycleGANTask

    tiny = dict(size=32, load_size=36, batch_size=2, ngf=8, n_blocks=1, ndf=8, loss=loss)
    bf16 = CycleGANTask({**tiny, "precision": "bf16"}, device="cpu", seed=0)
    fp32 = CycleGANTask(tiny, device="cpu", seed=0)
    g = torch.Generator().manual_seed(1)
    batch = {"A": torch.rand(2, 3, 36, 36, generator=g), "B": torch.rand(2, 3, 36, 36, generator=g)}
    torch.manual_seed(7)
    got = scalars(bf16.step(batch, 0))
    torch.manual_seed(7)
    ref = scalars(fp32.step(batch, 0))
    assert got["loss_G"] == pytest.approx(ref["loss_G"], rel=0.05)
    assert got["cycle"] == pytest.approx(ref["cycle"], rel=0.05)
    state = bf16.state_dict()
    assert all(t.dtype == torch.float32 for t in state["G_AB"].values())
    assert state["pool_A"]["images"].dtype == torch.float32 and len(state["pool_A"]["images"])
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        CycleGANTask({**tiny, "precision": "fp16"})
