"""Winograd 3x3 convs give what nn.Conv2d gives, alone and inside a whole generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from posterforge_cyclegan.network import ResnetGenerator
from posterforge_cyclegan.winograd import WinogradConv3x3, winogradize


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
def test_whole_generator_unchanged(m: int) -> None:
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=8, n_blocks=2, affine=True).eval()
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
