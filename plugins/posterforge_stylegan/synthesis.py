"""The synthesis network: w (one per layer) to a poster, from a learned constant of the
poster's aspect ratio doubled up to the image size."""

from __future__ import annotations

import torch
from torch import nn

from posterforge_stylegan.blocks import StyledConv, ToRGB, level_channels, pyramid


class SynthesisNetwork(nn.Module):
    """w (one per layer) to a poster. A learned constant of the poster's aspect ratio (2x4 for
    64x128), a styled convolution and a ToRGB at that size, then per doubling two styled
    convolutions (the first upsamples) and a ToRGB whose output adds to the upsampled RGB so far.

    ``forward(ws, noise_mode)``: ``(B, num_ws, w_dim)`` to ``(B, 3, H, W)``, roughly in
    ``[-1, 1]`` (no tanh, as in StyleGAN2). ``image_size`` is ``(W, H)``; channels at a level
    are ``channel_base / its long side``, at most ``channel_max``.
    """

    def __init__(
        self,
        w_dim: int,
        image_size: tuple[int, int] = (64, 128),
        channel_base: int = 4096,
        channel_max: int = 128,
        min_side: int = 2,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.image_size = (int(image_size[0]), int(image_size[1]))
        (w0, h0), n_up = pyramid(self.image_size, min_side)
        chans = level_channels((w0, h0), n_up, channel_base, channel_max)
        self.const = nn.Parameter(torch.randn(1, chans[0], h0, w0))
        self.conv1 = StyledConv(chans[0], chans[0], w_dim, (w0, h0))
        self.to_rgb1 = ToRGB(chans[0], w_dim)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for i in range(1, n_up + 1):
            size = (w0 << i, h0 << i)
            self.convs.append(StyledConv(chans[i - 1], chans[i], w_dim, size, upsample=True))
            self.convs.append(StyledConv(chans[i], chans[i], w_dim, size))
            self.to_rgbs.append(ToRGB(chans[i], w_dim))
        self.num_ws = 2 + 2 * n_up  # rosinality's indexing: a ToRGB shares the next conv's w

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws of shape {tuple(ws.shape)}: expected (B, {self.num_ws}, w_dim)")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.conv1(x, ws[:, 0], noise_mode)
        rgb = self.to_rgb1(x, ws[:, 1])
        i = 1
        for conv_up, conv, to_rgb in zip(
            self.convs[::2], self.convs[1::2], self.to_rgbs, strict=True
        ):
            x = conv_up(x, ws[:, i], noise_mode)
            x = conv(x, ws[:, i + 1], noise_mode)
            rgb = to_rgb(x, ws[:, i + 2], rgb)
            i += 2
        return rgb
