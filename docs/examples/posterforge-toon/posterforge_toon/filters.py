"""The toon look as three small kornia steps, batched on whatever device the tensor is on.

Every function maps ``(B, 3, H, W)`` floats in ``[0, 1]`` to the same shape and range, and treats
each image of the batch on its own (so a batch gives the same result as its images one by one).
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_grayscale, rgb_to_ycbcr, ycbcr_to_rgb
from kornia.filters import bilateral_blur, gaussian_blur2d, sobel


def smooth(
    x: torch.Tensor, passes: int = 2, kernel: int = 5, sigma_color: float = 0.1
) -> torch.Tensor:
    """Flatten texture but keep edges: ``passes`` rounds of a bilateral filter.

    A few small passes smooth as much as one large kernel at a fraction of the cost.
    """
    for _ in range(passes):
        x = bilateral_blur(x, kernel, sigma_color, (kernel / 2, kernel / 2))
    return x


def quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Round values in ``[0, 1]`` to ``levels`` evenly spaced steps (``levels >= 2``)."""
    steps = levels - 1
    return torch.round(x.clamp(0, 1) * steps) / steps


def posterize(x: torch.Tensor, luma_levels: int = 6, chroma_levels: int = 11) -> torch.Tensor:
    """Flat colour bands: brightness to ``luma_levels`` steps, colour (Cb, Cr) to
    ``chroma_levels``. At most ``luma_levels * chroma_levels ** 2`` distinct colours remain."""
    ycc = rgb_to_ycbcr(x)
    y = quantize(ycc[:, :1], luma_levels)
    cbcr = quantize(ycc[:, 1:], chroma_levels)
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1)).clamp(0, 1)


def edges(x: torch.Tensor, low: float = 0.04, high: float = 0.12) -> torch.Tensor:
    """Line strength ``(B, 1, H, W)`` in ``[0, 1]``: Sobel gradient magnitude of the blurred
    brightness, 0 below ``low``, 1 above ``high``, linear in between."""
    gray = gaussian_blur2d(rgb_to_grayscale(x), (5, 5), (1.0, 1.0))
    magnitude = sobel(gray)
    return ((magnitude - low) / (high - low)).clamp(0, 1)


class ToonFilter(torch.nn.Module):
    """Cartoon look: bilateral smoothing, posterised colour, dark lines along strong edges.

    Input and output: ``(B, 3, H, W)`` floats in ``[0, 1]``. The work runs in fp32 whatever the
    autocast setting (it is cheap, and colour rounding needs the precision); the result comes
    back in the input's dtype.

    Example:
        >>> ToonFilter()(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        passes: int = 2,
        luma_levels: int = 6,
        chroma_levels: int = 11,
        line_strength: float = 0.85,
    ) -> None:
        super().__init__()
        self.passes = passes
        self.luma_levels = luma_levels
        self.chroma_levels = chroma_levels
        self.line_strength = line_strength

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            flat = smooth(x.float(), self.passes)
            colour = posterize(flat, self.luma_levels, self.chroma_levels)
            lines = edges(flat)
            out = colour * (1 - self.line_strength * lines)
        return out.to(x.dtype)
