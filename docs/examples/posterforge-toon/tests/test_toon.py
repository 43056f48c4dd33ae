"""posterforge-toon: the filter keeps the translator contract and looks like a cartoon."""

from __future__ import annotations

import pytest
import torch
from posterforge_toon.filters import ToonFilter, edges, posterize, quantize

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def photo_like(batch: int = 1, size: int = 48, seed: int = 0) -> torch.Tensor:
    """Smooth colour gradients plus fine noise: thousands of distinct colours, like a photo."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = torch.stack([xs, ys, (xs + ys) / 2])[None].repeat(batch, 1, 1, 1)
    return (0.1 + 0.8 * base + 0.05 * torch.randn(base.shape, generator=g)).clamp(0, 1)


def distinct_colours(x: torch.Tensor) -> int:
    """Distinct 8-bit RGB colours of one (3, H, W) image, as an encoder would write them."""
    return len(torch.unique((x * 255).round().to(torch.uint8).reshape(3, -1), dim=1).T)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_range_and_dtype_are_kept(device, dtype):
    x = photo_like(batch=2, size=37).to(device, dtype)  # odd size: multiple = 1
    y = ToonFilter()(x)
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device)
    assert y.min() >= 0 and y.max() <= 1


def test_tiny_images_down_to_min_size_work():
    from posterforge_toon import Toon

    x = torch.rand(1, 3, Toon.min_size, Toon.min_size)
    assert ToonFilter()(x).shape == x.shape


def test_quantize_keeps_only_the_levels():
    values = quantize(torch.linspace(0, 1, 1000), 4)
    assert sorted(set(values.tolist())) == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_posterize_bounds_the_number_of_colours():
    x = photo_like(size=64)
    y = posterize(x, luma_levels=4, chroma_levels=5)
    assert distinct_colours(x) > 2000
    assert distinct_colours(y[0]) <= 4 * 5 * 5


def test_the_toon_look_has_far_fewer_colours_than_the_input():
    x = photo_like(size=64)
    assert distinct_colours(ToonFilter()(x)[0]) < distinct_colours(x[0]) / 4


def test_strong_edges_are_drawn_as_dark_lines():
    x = torch.full((1, 3, 32, 32), 0.85)
    x[..., 16:] = 0.15  # a vertical edge between columns 15 and 16
    y = ToonFilter()(x)
    line = edges(x)[0, 0]
    assert line[:, 15:17].min() > 0.9 and line[:, :10].max() == 0  # edge found, flat parts clean
    bright_flat = y[0, :, :, :8].mean()
    bright_at_edge = y[0, :, :, 14:16].mean()
    assert bright_at_edge < 0.5 * bright_flat  # darkened where the input has an edge
    assert torch.allclose(y[0, :, :, :8], y[0, :, :1, :1].expand(3, 32, 8))  # flat stays flat


def test_a_flat_image_gets_no_lines():
    x = torch.full((1, 3, 16, 16), 0.5)
    assert edges(x).max() == 0


def test_a_batch_gives_the_same_result_as_its_images_one_by_one():
    x = torch.cat([photo_like(size=40, seed=s) for s in range(3)])
    f = ToonFilter()
    one_by_one = torch.cat([f(img[None]) for img in x])
    torch.testing.assert_close(f(x), one_by_one)


def test_autocast_runs_in_fp32_and_matches():
    x = photo_like(size=32)
    f = ToonFilter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = f(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, f(x))


def test_the_installed_plugin_is_found_through_its_entry_point():
    from posterforge_toon import Toon

    from posterforge.plugin import discover

    host = discover({"toon"})  # the installed plugins, as posterforge loads them for a command
    assert host.plugins["toon"].errors == []
    assert host.translators.get("toon") is Toon
    assert host.translators.get("cartoon") is Toon
    assert isinstance(Toon.build(None), ToonFilter)
