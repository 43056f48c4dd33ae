"""Winograd 3x3 convs give what nn.Conv2d gives, alone and inside a whole generator."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.network import (
    ResnetGenerator,
    SharedWorkspace,
    cpu_inference,
    winogradize,
)
from posterforge_cyclegan.winograd import (
    WinogradConv3x3,
    Workspace,
    kernel_cache,
    winograd_conv3x3,
)


@contextlib.contextmanager
def _patched(owner, name, value):
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    """Max abs difference relative to the output scale (max |ref|)."""
    return ((got - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize(
    "n,cin,cout,h,w",
    [
        (1, 8, 8, 8, 8),  # even, a multiple of both tile sizes
        (1, 8, 32, 7, 9),  # odd H and W: tile grid padded, then cropped
        (3, 32, 8, 10, 6),  # batch 3, H, W multiples of 2 but not of 4
        (3, 32, 32, 1, 5),  # a single output row
    ],
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("band_bytes", [8 << 20, 1])  # one band; one band per tile row
def test_matches_conv2d(
    m: int, n: int, cin: int, cout: int, h: int, w: int, bias: bool, band_bytes: int
) -> None:
    torch.manual_seed(1000 * n + 100 * h + w)
    conv = nn.Conv2d(cin, cout, 3, bias=bias)
    x = torch.randn(n, cin, h + 2, w + 2)
    with torch.inference_mode():
        ref = F.conv2d(x, conv.weight, conv.bias)
        got = WinogradConv3x3(conv, m, band_bytes)(x)
    assert got.shape == ref.shape == (n, cout, h, w)
    assert _rel_err(got, ref) < 1e-4


def test_rejects_other_convs() -> None:
    with pytest.raises(ValueError):
        WinogradConv3x3(nn.Conv2d(8, 8, 3, padding=1))
    with pytest.raises(ValueError):
        WinogradConv3x3(nn.Conv2d(8, 8, 3, stride=2))
    with pytest.raises(ValueError):
        WinogradConv3x3(nn.Conv2d(8, 8, 3), m=3)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("h,w", [(2, 2), (3, 7), (8, 8), (9, 6)])
def test_reflect_pads_while_tiling_as_reflection_pad_then_conv(m: int, h: int, w: int) -> None:
    torch.manual_seed(h * 10 + w)
    conv = nn.Conv2d(8, 16, 3)
    x = torch.randn(2, 8, h, w)
    with torch.inference_mode():
        ref = conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        got = WinogradConv3x3(conv, m, reflect=True)(x)
    assert got.shape == ref.shape == (2, 16, h, w)
    assert _rel_err(got, ref) < 1e-4
    with pytest.raises(ValueError, match="needs H and W >= 2"):
        WinogradConv3x3(conv, m, reflect=True)(torch.randn(1, 8, 1, 5))
    # through a workspace, one band per tile row: the same bits, in the workspace's buffer
    banded = WinogradConv3x3(conv, m, band_bytes=1, reflect=True)
    workspace = Workspace()
    with torch.inference_mode():
        alone = banded(x)
        shared = banded(x, workspace, "a")
        assert torch.equal(shared, alone) and workspace.holds("a", shared)


@pytest.mark.parametrize("m", [2, 4])
def test_whole_generator_unchanged(m: int) -> None:
    torch.manual_seed(0)
    net = ResnetGenerator(ResnetConfig(ngf=8, n_blocks=2, affine=True)).eval()
    with torch.no_grad():  # non-trivial affine params, so the test sees them
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fast = winogradize(net, m)
    convs = [mod for mod in fast.modules() if isinstance(mod, WinogradConv3x3)]
    assert len(convs) == 4  # conv1 and conv2 of both blocks
    assert isinstance(net.blocks[0].conv1, nn.Conv2d)  # the original is left as it was
    x = torch.rand(2, 3, 36, 44) * 2 - 1
    with torch.inference_mode():
        ref, got = net(x), fast(x)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("affine", [False, True])
def test_cpu_inference_variant_computes_what_the_network_does(affine: bool) -> None:
    """In place under no_grad (norm, ReLU, residual sum), out of place when recording grads."""
    torch.manual_seed(1)
    net = ResnetGenerator(ResnetConfig(ngf=8, n_blocks=3, affine=affine)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fast = cpu_inference(net)
    assert not net.blocks[0].inplace and fast.blocks[0].inplace and fast.stem.inplace
    assert isinstance(fast.blocks, SharedWorkspace)
    assert "blocks.2.conv2.weight_t" in fast.state_dict()  # the blocks keep their keys
    made = []
    real_get = Workspace.get

    def get(self, name, shape, like):
        buf = real_get(self, name, shape, like)
        made.append((name, buf.untyped_storage().data_ptr()))
        return buf

    x = torch.rand(2, 3, 36, 44) * 2 - 1  # blocks at 9x11: Winograd tiles cropped
    with torch.no_grad(), _patched(Workspace, "get", get):
        ref, got = net(x), fast(x)
    assert (got - ref).abs().max().item() < 1e-4
    # three blocks, two convs each: the tiles buffer and the outputs a, b, a in turn
    turns = [("tiles", "a")] * 2 + [("tiles", "b")] * 2 + [("tiles", "a")] * 2
    assert [name for name, _ in made] == [name for turn in turns for name in turn]
    assert len(set(made)) == 3  # each allocated once
    # blocks at 8x12 (whole tiles: norm in place), and a flat image, whose near-zero variances
    # magnify any difference in rounding from instance_norm's
    flat = torch.full((1, 3, 32, 48), 0.3)
    for other in (torch.rand(1, 3, 32, 48) * 2 - 1, flat):
        with torch.no_grad():
            assert (fast(other) - net(other)).abs().max().item() < 1e-4
    # recording gradients, the in-place flag is ignored (in place would break the backward)
    flagged = ResnetGenerator(ResnetConfig(ngf=8, n_blocks=3, affine=affine))
    flagged.load_state_dict(net.state_dict())
    for module in flagged.modules():
        if hasattr(module, "inplace"):
            module.inplace = True
    again = flagged(x)
    again.sum().backward()
    assert (again.detach() - ref).abs().max().item() < 1e-5
    assert flagged.blocks[0].conv1.weight.grad is not None


# -- training: winograd_conv3x3 is differentiable ------------------------------------------------


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize(
    "n,cin,cout,h,w,band_bytes",
    [(1, 3, 4, 4, 4, 8 << 20), (2, 2, 3, 5, 7, 8 << 20), (2, 2, 3, 9, 7, 1), (1, 2, 2, 1, 6, 1)],
)
def test_gradcheck_float64(m: int, n: int, cin: int, cout: int, h: int, w: int, band_bytes: int):
    g = torch.Generator().manual_seed(n * 100 + h * 10 + w)
    x = torch.randn(n, cin, h + 2, w + 2, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(cout, cin, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    bias = torch.randn(cout, dtype=torch.float64, generator=g, requires_grad=True)

    def fn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return winograd_conv3x3(x, weight, bias, m, band_bytes)

    assert torch.autograd.gradcheck(fn, (x, weight, bias), fast_mode=h * w > 20)
    assert torch.allclose(fn(x, weight, bias), F.conv2d(x, weight, bias))


@pytest.mark.parametrize("h,w", [(32, 32), (30, 21)])
def test_fp32_output_and_gradients_match_conv2d(h: int, w: int) -> None:
    torch.manual_seed(h + w)
    conv = nn.Conv2d(64, 48, 3)
    x = torch.randn(2, 64, h + 2, w + 2, requires_grad=True)
    grad_out = torch.randn(2, 48, h, w)
    ref = conv(x)
    ref_grads = torch.autograd.grad(ref, (x, conv.weight, conv.bias), grad_out)
    got = winograd_conv3x3(x, conv.weight, conv.bias)
    got_grads = torch.autograd.grad(got, (x, conv.weight, conv.bias), grad_out)
    assert _rel_err(got, ref) < 1e-4
    for g, r in zip(got_grads, ref_grads, strict=True):
        assert g.shape == r.shape
        assert _rel_err(g, r) < 1e-4


def test_only_the_needed_gradients_are_computed() -> None:
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    weight = torch.randn(4, 4, 3, 3)  # frozen, e.g. a discriminator during the G step
    (gx,) = torch.autograd.grad(winograd_conv3x3(x, weight).sum(), (x,))
    assert torch.allclose(gx, torch.autograd.grad(F.conv2d(x, weight).sum(), (x,))[0], atol=1e-5)
    weight.requires_grad_(True)
    out = winograd_conv3x3(x.detach(), weight)
    assert out.grad_fn is not None
    (gw,) = torch.autograd.grad(out.sum(), (weight,))
    ref = torch.autograd.grad(F.conv2d(x.detach(), weight).sum(), (weight,))[0]
    assert torch.allclose(gw, ref, atol=1e-4)


def _grad_fn_names(t: torch.Tensor) -> set[str]:
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo += [nxt for nxt, _ in fn.next_functions]
    return names


@pytest.fixture
def winograd_at_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets tiny test nets take the Winograd path (normally kept for big convs, where it pays)."""
    from posterforge_cyclegan.network import ResidualBlock

    monkeypatch.setattr(ResidualBlock, "winograd_min_channels", 0)
    monkeypatch.setattr(ResidualBlock, "winograd_min_pixels", 0)


def test_fast_cpu_training_keeps_small_convs_on_onednn() -> None:
    net = ResnetGenerator(ResnetConfig(ngf=8, n_blocks=1)).fast_cpu_training()
    assert net.blocks[0].winograd
    assert "_WinogradConvBackward" not in _grad_fn_names(net(torch.rand(1, 3, 32, 32)))


@pytest.mark.usefixtures("winograd_at_any_size")
def test_fast_cpu_training_generator_matches_and_keeps_its_state_dict() -> None:
    torch.manual_seed(0)
    ref = ResnetGenerator(ResnetConfig(ngf=8, n_blocks=2, affine=True))
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fast = ResnetGenerator(ResnetConfig(ngf=8, n_blocks=2, affine=True))
    fast.load_state_dict(ref.state_dict())
    assert fast.fast_cpu_training() is fast
    assert list(fast.state_dict()) == list(ref.state_dict())  # exports and resume unchanged

    x = torch.rand(2, 3, 36, 44) * 2 - 1
    y_ref, y_fast = ref(x), fast(x)
    assert "_WinogradConvBackward" in _grad_fn_names(y_fast)
    assert "_WinogradConvBackward" not in _grad_fn_names(y_ref)
    assert (y_fast - y_ref).abs().max().item() < 1e-4
    grad = torch.randn_like(y_ref)
    g_ref = torch.autograd.grad(y_ref, list(ref.parameters()), grad)
    g_fast = torch.autograd.grad(y_fast, list(fast.parameters()), grad)
    scale = max(g.abs().max().item() for g in g_ref)
    for (name, _), a, b in zip(ref.named_parameters(), g_fast, g_ref, strict=True):
        if name.endswith("conv.bias") or name.endswith(("conv1.bias", "conv2.bias")):
            # a bias right before instance norm has zero gradient: both are rounding noise
            assert a.abs().max() < 1e-3 * scale and b.abs().max() < 1e-3 * scale, name
        else:
            assert _rel_err(a, b) < 1e-3, name

    with torch.inference_mode():  # sample grids and exports run it without autograd
        assert (fast.eval()(x) - ref.eval()(x)).abs().max().item() < 1e-4

    fast.fast_cpu_training(False)
    assert "_WinogradConvBackward" not in _grad_fn_names(fast(x))
    with torch.no_grad():  # other dtypes keep nn.Conv2d (Winograd is tuned for fp32 only)
        assert torch.allclose(fast.double()(x.double()), ref.double()(x.double()))


@pytest.mark.parametrize("cached", [True, False])
def test_the_transformed_kernel_follows_in_place_weight_updates(cached: bool) -> None:
    torch.manual_seed(3)
    conv = nn.Conv2d(4, 4, 3)
    x = torch.randn(1, 4, 8, 8)
    with kernel_cache() if cached else contextlib.nullcontext():
        _updates_follow(conv, x)


def _updates_follow(conv: nn.Conv2d, x: torch.Tensor) -> None:
    before = winograd_conv3x3(x, conv.weight, conv.bias)
    assert torch.allclose(before, conv(x), atol=1e-5)
    opt = torch.optim.Adam(conv.parameters(), lr=0.1, foreach=True)
    before.square().sum().backward()
    opt.step()  # updates the weight in place, as in training
    assert torch.allclose(winograd_conv3x3(x, conv.weight, conv.bias), conv(x), atol=1e-5)
    with torch.no_grad():
        conv.weight.mul_(-1)
    assert torch.allclose(winograd_conv3x3(x, conv.weight, conv.bias), conv(x), atol=1e-5)
