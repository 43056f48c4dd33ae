"""The StyleGAN family's building blocks: networks, losses and adaptive augmentation, at tiny
widths (the whole file runs in seconds on a CPU)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from posterforge_stylegan.augment import P_MAX, AdaptiveAugment
from posterforge_stylegan.config import (
    AugmentConfig,
    StyleDiscriminatorConfig,
    StyleGeneratorConfig,
)
from posterforge_stylegan.losses import (
    d_logistic,
    g_nonsaturating,
    path_length_penalty,
    r1_penalty,
)
from posterforge_stylegan.network import (
    MappingNetwork,
    ModulatedConv2d,
    StyleDiscriminator,
    StyleGenerator,
    minibatch_stddev,
    style_crossover,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TINY = {"channel_base": 128, "channel_max": 8}
SIZES = [((64, 128), 12, (4, 2)), ((128, 256), 14, (4, 2))]  # (W, H), num_ws, const (H, W)


def make_g(**kw) -> StyleGenerator:
    torch.manual_seed(0)
    args = {"z_dim": 8, "c_dim": 3, "w_dim": 8, "mapping_layers": 2, **TINY, **kw}
    return StyleGenerator(StyleGeneratorConfig(**args)).eval()


def make_d(**kw) -> StyleDiscriminator:
    torch.manual_seed(1)
    return StyleDiscriminator(StyleDiscriminatorConfig(**{"c_dim": 3, **TINY, **kw})).eval()


def onehot(*labels: int, n: int = 3) -> torch.Tensor:
    return torch.eye(n)[list(labels)]


# --- shapes and conditioning --------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("size", "num_ws", "const_hw"), SIZES)
def test_generator_and_discriminator_shapes(size, num_ws, const_hw, device):
    g, d = make_g(image_size=size).to(device), make_d(image_size=size).to(device)
    w, h = size
    z, c = torch.randn(2, 8, device=device), onehot(0, 2).to(device)
    images = g(z, c)
    assert images.shape == (2, 3, h, w)
    assert torch.isfinite(images).all()
    assert g.num_ws == num_ws
    assert tuple(g.synthesis.const.shape[2:]) == const_hw  # the poster's aspect ratio, 2 x 4
    assert d(images, c).shape == (2,)


def test_unconditional_networks():
    g, d = make_g(c_dim=0), make_d(c_dim=0)
    images = g(torch.randn(3, 8))
    assert images.shape == (3, 3, 128, 64)
    assert d(images).shape == (3,)
    assert g.mapping.embed is None and d.embed is None
    assert g.mapping.w_avg.shape == (1, 8)


def test_condition_changes_the_output():
    g = make_g()
    z = torch.randn(2, 8)
    a = g(z, onehot(0, 0), noise_mode="const")
    b = g(z, onehot(1, 1), noise_mode="const")
    assert (a - b).abs().mean() > 1e-3


def test_wrong_condition_and_size_are_refused():
    g = make_g()
    with pytest.raises(ValueError, match=r"expected \(B, 3\)"):
        g(torch.randn(2, 8), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"expected \(B, 3\)"):
        g(torch.randn(2, 8))
    with pytest.raises(ValueError, match="cannot be halved"):
        StyleGenerator(
            StyleGeneratorConfig(z_dim=8, c_dim=0, w_dim=8, image_size=(63, 128), **TINY)
        )


def test_noise_modes():
    g = make_g()
    for layer in g.modules():
        if hasattr(layer, "strength"):
            layer.strength.data.fill_(1.0)
    z, c = torch.randn(2, 8), onehot(0, 1)
    assert torch.equal(g(z, c, noise_mode="const"), g(z, c, noise_mode="const"))
    assert torch.equal(g(z, c, noise_mode="none"), g(z, c, noise_mode="none"))
    assert not torch.equal(g(z, c, noise_mode="random"), g(z, c, noise_mode="random"))
    assert not torch.equal(g(z, c, noise_mode="const"), g(z, c, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        g(z, c, noise_mode="fresh")


# --- the per-label average of w and truncation --------------------------------------------------


def test_truncation_psi0_gives_the_requested_labels_average():
    g = make_g()
    g.mapping.w_avg.copy_(torch.randn(3, 8))
    avg = g.mapping.w_avg
    z = torch.randn(2, 8)

    def from_w(w: torch.Tensor) -> torch.Tensor:
        ws = w.expand(2, 8)[:, None].expand(-1, g.num_ws, -1)
        return g.synthesis(ws, noise_mode="const")

    horror = g(z, onehot(0, 0), truncation_psi=0.0, noise_mode="const")
    comedy = g(z, onehot(1, 1), truncation_psi=0.0, noise_mode="const")
    torch.testing.assert_close(horror, from_w(avg[0]))
    torch.testing.assert_close(comedy, from_w(avg[1]))
    assert (horror - comedy).abs().mean() > 1e-3
    assert not torch.allclose(horror, from_w(avg.mean(0)))  # not a global average

    # a mix is the weighted combination of the rows, weights normalised
    mix = torch.tensor([[0.7, 0.3, 0.0], [1.4, 0.6, 0.0]])
    torch.testing.assert_close(g.mapping.w_avg_for(mix), (0.7 * avg[0] + 0.3 * avg[1]).expand(2, 8))


def test_truncation_psi1_leaves_w_unchanged_and_psi_interpolates():
    g = make_g()
    g.mapping.w_avg.copy_(torch.randn(3, 8))
    z, c = torch.randn(4, 8), onehot(0, 1, 2, 0)
    w = g.mapping(z, c)
    assert torch.equal(g.mapping(z, c, truncation_psi=1.0), w)
    half = g.mapping(z, c, truncation_psi=0.5)
    torch.testing.assert_close(half, 0.5 * (w + g.mapping.w_avg[[0, 1, 2, 0]]))


def test_w_avg_moves_only_in_training_and_toward_the_labels_samples():
    g = make_g()
    mapping: MappingNetwork = g.mapping
    z = torch.randn(2, 8)
    c = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    w = mapping(z, c)  # eval mode: no update
    assert torch.equal(mapping.w_avg, torch.zeros(3, 8))
    mapping.train()
    mapping(z, c, update_w_avg=False)
    assert torch.equal(mapping.w_avg, torch.zeros(3, 8))

    before = torch.randn(3, 8)
    mapping.w_avg.copy_(before)
    mapping(z, c)
    label0 = (w[0] + 0.5 * w[1]) / 1.5  # each label's samples, weighted by the label's weight
    label1 = w[1]
    torch.testing.assert_close(mapping.w_avg[0], before[0].lerp(label0, 0.005))
    torch.testing.assert_close(mapping.w_avg[1], before[1].lerp(label1, 0.005))
    assert torch.equal(mapping.w_avg[2], before[2])  # no sample carries label 2
    assert (mapping.w_avg[0] - label0).norm() < (before[0] - label0).norm()


def test_unconditional_w_avg_tracks_the_batch_mean():
    g = make_g(c_dim=0).train()
    torch.manual_seed(2)
    z = torch.randn(5, 8)
    w = g.mapping(z, update_w_avg=False)
    g.mapping(z)
    torch.testing.assert_close(g.mapping.w_avg[0], 0.005 * w.mean(0))


# --- style mixing -------------------------------------------------------------------------------


def test_style_mixing_takes_the_layers_after_the_crossover_from_the_second_w():
    g = make_g()
    z, z2, c = torch.randn(3, 8), torch.randn(3, 8), onehot(0, 1, 2)
    w1, w2 = g.mapping(z, c), g.mapping(z2, c)
    ws = g.mixed_ws(z, c, z2, mixing_prob=1.0, generator=torch.Generator().manual_seed(0))
    assert ws.shape == (3, g.num_ws, 8)
    first = [torch.equal(ws[:, i], w1) for i in range(g.num_ws)]
    second = [torch.equal(ws[:, i], w2) for i in range(g.num_ws)]
    cut = first.index(False)
    assert 1 <= cut < g.num_ws
    assert all(first[:cut]) and all(second[cut:])
    assert not torch.allclose(g.synthesis(ws, "const"), g.synthesis(g.ws(z, c), "const"))

    again = g.mixed_ws(z, c, z2, mixing_prob=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, ws)  # reproducible from the generator
    assert torch.equal(g.mixed_ws(z, c, z2, mixing_prob=0.0), g.ws(z, c))


def test_style_crossover_draws():
    gen = torch.Generator().manual_seed(0)
    draws = [style_crossover(12, 0.5, gen) for _ in range(2000)]
    unmixed = sum(d == 12 for d in draws) / len(draws)
    assert 0.45 < unmixed < 0.55
    assert set(draws) == set(range(1, 13))
    torch.manual_seed(5)
    a = [style_crossover(12, 0.9) for _ in range(20)]
    torch.manual_seed(5)
    assert a == [style_crossover(12, 0.9) for _ in range(20)]  # the global RNG when no generator


# --- modulated convolution ----------------------------------------------------------------------


def test_demodulation_keeps_activations_unit_scale():
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 32, 3, w_dim=8)
    plain = ModulatedConv2d(32, 32, 3, w_dim=8, demodulate=False)
    plain.load_state_dict(conv.state_dict())
    x, style = torch.randn(8, 32, 32, 32), torch.randn(8, 8)
    with torch.no_grad():
        for scale in (0.1, 1.0, 10.0):
            assert abs(conv(x, scale * style).std().item() - 1.0) < 0.1
        assert plain(x, 10.0 * style).std().item() > 3.0  # without it the style sets the scale
        up = ModulatedConv2d(32, 16, 3, w_dim=8, upsample=True)(x, style)
    assert up.shape == (8, 16, 64, 64)


# --- losses -------------------------------------------------------------------------------------


def test_logistic_losses_on_known_logits():
    zero = torch.zeros(4)
    torch.testing.assert_close(d_logistic(zero, zero), torch.tensor(2 * math.log(2)))
    torch.testing.assert_close(g_nonsaturating(zero), torch.tensor(math.log(2)))
    expected = math.log1p(math.exp(-1)) + math.log1p(math.exp(-2))
    torch.testing.assert_close(
        d_logistic(torch.tensor([1.0]), torch.tensor([-2.0])), torch.tensor(expected)
    )
    expected = (math.log1p(math.exp(-3)) + math.log1p(math.exp(1))) / 2
    torch.testing.assert_close(g_nonsaturating(torch.tensor([3.0, -1.0])), torch.tensor(expected))
    assert d_logistic(torch.full((2,), 50.0), torch.full((2,), -50.0)) < 1e-6


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    torch.manual_seed(0)

    class LinearD(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(3, 8, 4))

        def forward(self, x):
            return (x * self.weight).flatten(1).sum(dim=1) + 0.3

    d = LinearD()
    real = torch.randn(5, 3, 8, 4, requires_grad=True)
    penalty = r1_penalty(real, d(real))
    torch.testing.assert_close(penalty, d.weight.pow(2).sum())
    penalty.backward()  # in the graph: it trains D
    torch.testing.assert_close(d.weight.grad, 2 * d.weight.detach())


def test_r1_and_path_length_run_on_the_networks():
    g, d = make_g().train(), make_d().train()
    c = onehot(0, 1, 2, 0)
    real = torch.randn(4, 3, 128, 64, requires_grad=True)
    penalty = r1_penalty(real, d(real, c))
    penalty.backward()
    assert penalty > 0 and d.from_rgb.weight.grad.abs().sum() > 0

    ws = g.mixed_ws(torch.randn(4, 8), c, mixing_prob=0.5)
    fake = g.synthesis(ws)
    penalty, pl_mean = path_length_penalty(fake, ws, pl_mean=torch.tensor(0.0))
    assert penalty >= 0 and pl_mean > 0 and not pl_mean.requires_grad
    penalty.backward()
    assert g.synthesis.const.grad.abs().sum() > 0
    fake = g.synthesis(ws := g.ws(torch.randn(4, 8), c))
    _, kept = path_length_penalty(fake, ws, pl_mean=0.7, decay=0.0)
    torch.testing.assert_close(kept, torch.tensor(0.7))


# --- discriminator ------------------------------------------------------------------------------


def test_discriminator_output_is_affine_in_the_condition():
    d = make_d()
    x = torch.randn(4, 3, 128, 64)
    c1, c2 = torch.rand(4, 3), torch.rand(4, 3)
    with torch.no_grad():
        mixed = d(x, 0.3 * c1 + 0.7 * c2)
        torch.testing.assert_close(mixed, 0.3 * d(x, c1) + 0.7 * d(x, c2))
        torch.testing.assert_close(d(x, c1 + c2) - d(x, c2), d(x, c1) - d(x, torch.zeros(4, 3)))
        assert (d(x, c1) - d(x, c2)).abs().max() > 1e-4


def test_minibatch_stddev():
    same = torch.randn(1, 8, 4, 2).expand(6, -1, -1, -1)
    out = minibatch_stddev(same, group_size=4)  # 6 samples: groups of 3
    assert out.shape == (6, 9, 4, 2)
    assert out[:, 8].max() < 1e-3  # no variety
    assert minibatch_stddev(torch.randn(6, 8, 4, 2))[:, 8].min() > 0.5


# --- config round trip --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 128), (128, 256)])
def test_config_round_trip_rebuilds_identical_networks(size):
    for net in (make_g(image_size=size, embed_dim=6), make_d(image_size=size, mbstd_group=2)):
        config = json.loads(json.dumps(net.config.to_dict()))  # as the weight header holds it
        rebuilt = type(net)(type(net.config).from_dict(config)).eval()
        assert rebuilt.config == net.config
        a, b = net.state_dict(), rebuilt.state_dict()
        assert list(a) == list(b)
        assert all(a[k].shape == b[k].shape for k in a)
        rebuilt.load_state_dict(a)
        if isinstance(net, StyleGenerator):
            z, c = torch.randn(2, 8), onehot(0, 1)
            assert torch.equal(net(z, c, noise_mode="const"), rebuilt(z, c, noise_mode="const"))
        else:
            x, c = torch.randn(2, 3, size[1], size[0]), onehot(0, 1)
            assert torch.equal(net(x, c), rebuilt(x, c))


def test_package_import_does_not_load_torch():
    code = "import sys, posterforge_stylegan; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- adaptive discriminator augmentation --------------------------------------------------------


def run_ada(aug: AdaptiveAugment, logits: list[torch.Tensor]) -> list[float]:
    ps = []
    for step in logits:
        aug.accumulate(step)
        aug.adjust(batch_size=step.numel())
        ps.append(float(aug.p))
    return ps


def test_ada_p_rises_on_an_overfitting_discriminator_and_falls_otherwise():
    aug = AdaptiveAugment(AugmentConfig(interval=4, speed_kimg=1.0))
    ps = run_ada(aug, [torch.full((16,), 3.0)] * 8)
    assert ps[:3] == [0.0] * 3  # p moves every `interval` steps
    assert ps[3] == pytest.approx(16 * 4 / 1000)
    assert ps[7] == pytest.approx(2 * 16 * 4 / 1000)
    assert aug.r_t == 1.0

    ps = run_ada(aug, [-torch.rand(16)] * 8)
    assert ps[3] < ps[0] and ps[7] == 0.0
    assert aug.r_t == -1.0
    assert run_ada(aug, [-torch.rand(16)] * 4)[-1] == 0.0  # clamped at 0

    high = AdaptiveAugment(AugmentConfig(p=0.999, interval=1, speed_kimg=0.001))
    assert all(0.0 <= p < 1.0 for p in run_ada(high, [torch.ones(8)] * 3))
    assert float(high.p) == P_MAX

    fixed = AdaptiveAugment(AugmentConfig(p=0.3, target=None, interval=1))
    assert run_ada(fixed, [torch.ones(8)] * 3) == [pytest.approx(0.3)] * 3


def test_ada_state_round_trips_and_resume_continues_exactly():
    torch.manual_seed(0)
    logits = [torch.randn(8) + 1.0 for _ in range(13)]
    first = AdaptiveAugment(AugmentConfig(interval=3, speed_kimg=0.5))
    run_ada(first, logits[:5])  # stops mid-interval: the accumulators hold two steps
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = AdaptiveAugment(AugmentConfig(interval=3, speed_kimg=0.5))
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for key, value in first.state_dict().items():
        restored = resumed.state_dict()[key]
        assert torch.equal(value, restored) if torch.is_tensor(value) else value == restored
    assert float(first.sign_count) > 0 and resumed.steps == 5

    assert run_ada(first, logits[5:]) == run_ada(resumed, logits[5:])
    assert first.r_t == resumed.r_t and float(first.p) > 0
    x = torch.rand(4, 3, 128, 64) * 2 - 1
    torch.manual_seed(1)
    a = first(x)
    torch.manual_seed(1)
    assert torch.equal(a, resumed(x))  # draws come from the (restored) global RNG


@pytest.mark.parametrize("device", DEVICES)
def test_augmentation_is_the_identity_at_p0_and_differentiable_otherwise(device):
    x = (torch.rand(6, 3, 128, 64, device=device) * 2 - 1).requires_grad_(True)
    aug = AdaptiveAugment().to(device)
    assert aug(x) is x

    aug.p.fill_(0.999)
    y = aug(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_augmentation_keeps_fake_gradients_and_flips_exactly():
    g, d = make_g().train(), make_d().train()
    c = onehot(0, 1)
    aug = AdaptiveAugment(AugmentConfig(p=0.8))
    g_nonsaturating(d(aug(g(torch.randn(2, 8), c)), c)).backward()
    assert g.synthesis.const.grad.abs().sum() > 0

    flip_only = AdaptiveAugment(
        AugmentConfig(
            p=1.0,
            translate=0.0,
            scale_std=0.0,
            rotate_max=0.0,
            brightness_std=0.0,
            contrast_std=0.0,
            saturation_std=0.0,
        )
    )
    x = torch.rand(3, 3, 16, 8)
    torch.testing.assert_close(flip_only(x), x.flip(-1))  # an exact pixel mirror, not a resample
