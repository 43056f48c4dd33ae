"""A StyleGAN2-style conditional generator and a projection discriminator for posters.

Plain PyTorch, in the manner of rosinality's stylegan2: nothing compiled, no custom CUDA ops.
Reading order: equalized layers, the modulated convolution and its companions (noise, ToRGB), the
mapping network (z and the condition c to w, with a per-label average of w for truncation), the
synthesis network (w to a poster), the generator combining both, then the discriminator.

Posters are not square: the synthesis starts from a learned constant with the poster's aspect
ratio (2 wide x 4 high for 64x128) and doubles it up to the image size; the discriminator walks
the same resolutions down. Sizes are given as ``(W, H)``, tensors are ``(B, C, H, W)``.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

NOISE_MODES = ("random", "const", "none")


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with StyleGAN's gain sqrt(2), which keeps unit-variance activations unit-scale."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


def pixel_norm(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Normalise to unit second moment along ``dim`` (a zero vector stays zero)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=dim, keepdim=True) + 1e-8)


def pyramid(image_size: tuple[int, int], min_side: int = 2) -> tuple[tuple[int, int], int]:
    """``((w0, h0), n_up)``: the smallest size, keeping the aspect ratio and a short side of at
    least ``min_side``, from which ``n_up`` doublings reach ``image_size`` ``(W, H)``."""
    w, h = (int(s) for s in image_size)
    n_up = 0
    while w % 2 == 0 and h % 2 == 0 and min(w, h) // 2 >= min_side:
        w, h, n_up = w // 2, h // 2, n_up + 1
    if n_up == 0:
        raise ValueError(
            f"image size {tuple(image_size)} (W, H) cannot be halved down to a short side of "
            f"{min_side}: use sizes like 64x128 or 128x256"
        )
    return (w, h), n_up


def level_channels(
    base: tuple[int, int], n_up: int, channel_base: int, channel_max: int
) -> list[int]:
    """Channels at each resolution level ``0..n_up``: ``channel_base / long side``, capped."""
    long0 = max(base)
    return [max(1, min(channel_base // (long0 << i), channel_max)) for i in range(n_up + 1)]


# --- equalized learning rate --------------------------------------------------------------------


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights drawn from N(0, 1/lr_mul) and scaled at
    run time by ``lr_mul / sqrt(in_dim)``, so Adam updates every layer at the same pace.
    ``lr_mul < 1`` slows a layer down (the mapping network uses 0.01).

    ``(B, in_dim) -> (B, out_dim)``
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        out = F.linear(x, self.weight * self.scale, bias)
        return lrelu(out) if self.activation else out


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate (weights scaled by ``1/sqrt(fan_in)``).

    ``(B, in_ch, H, W) -> (B, out_ch, H', W')``
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, padding: int = 0, bias: bool = True
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


# --- generator building blocks ------------------------------------------------------------------


class ModulatedConv2d(nn.Module):
    """StyleGAN2's convolution: the style scales the weight per input channel (modulation), each
    output channel is renormalised to unit L2 norm (demodulation, which replaces AdaIN: a
    unit-variance input gives a unit-variance output whatever the style), and the batch runs as
    one grouped convolution.

    ``forward(x, w)``: ``(B, in_ch, H, W)`` and ``(B, w_dim)`` to ``(B, out_ch, H, W)``, or
    ``(B, out_ch, 2H, 2W)`` with ``upsample`` (bilinear, then the convolution).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.modulation = EqualLinear(w_dim, in_ch, bias_init=1.0)  # styles start at 1
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, _, h, wd = x.shape
        style = self.modulation(w).view(b, 1, self.in_ch, 1, 1)
        weight = self.scale * self.weight * style  # (B, out, in, k, k)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4)) + 1e-8)
            weight = weight * demod.view(b, self.out_ch, 1, 1, 1)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            h, wd = 2 * h, 2 * wd
        # The batch becomes the groups: one convolution with a different weight per sample.
        weight = weight.view(b * self.out_ch, self.in_ch, self.kernel_size, self.kernel_size)
        out = F.conv2d(
            x.reshape(1, b * self.in_ch, h, wd),
            weight.to(x.dtype),
            padding=self.kernel_size // 2,
            groups=b,
        )
        return out.view(b, self.out_ch, h, wd)


class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned strength (starting at 0). ``noise_mode``: ``"random"``
    draws fresh noise from the global RNG, ``"const"`` uses the fixed buffer ``noise_const``
    (saved with the weights, so sampling can be deterministic), ``"none"`` adds nothing.

    ``(B, C, H, W) -> (B, C, H, W)`` with ``size == (W, H)``
    """

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, size[1], size[0]))

    def forward(self, x: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        elif noise_mode == "random":
            b, _, h, w = x.shape
            noise = torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)
        else:
            raise ValueError(f"noise_mode {noise_mode!r}: expected one of {NOISE_MODES}")
        return x + self.strength * noise


class StyledConv(nn.Module):
    """Modulated convolution, noise, bias, leaky ReLU: one layer of the synthesis network.

    ``forward(x, w, noise_mode)``: ``(B, in_ch, H, W)`` to ``(B, out_ch, H', W')``, where
    ``size == (W', H')`` is the output size.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        w_dim: int,
        size: tuple[int, int],
        upsample: bool = False,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection(size)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.noise(self.conv(x, w), noise_mode)
        return lrelu(x + self.bias)


class ToRGB(nn.Module):
    """1x1 modulated convolution to RGB (no demodulation: colours need their scale), added to the
    upsampled RGB of the previous resolution (the skip architecture of StyleGAN2).

    ``forward(x, w, skip)``: ``(B, in_ch, H, W)``, ``(B, w_dim)`` and ``(B, 3, H/2, W/2)`` or
    ``None`` to ``(B, 3, H, W)``.
    """

    def __init__(self, in_ch: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return out


# --- mapping network ----------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """z and the condition vector c to the intermediate latent w.

    ``z`` is normalised to unit second moment; ``c`` (one-hot, multi-hot or a weighted mix of
    labels) goes through a learned embedding (linear, no bias), is normalised the same way, and
    is concatenated to z; an MLP of ``n_layers`` equalized layers (slowed by ``lr_mul``) maps
    the result to w. ``c_dim == 0`` is an unconditional network (no embedding, ``c`` is None).

    The buffer ``w_avg`` ``(max(c_dim, 1), w_dim)`` tracks the average w of each label, for
    truncation toward the requested label rather than a global average: in training mode each
    row moves (EMA, ``w_avg_beta``) toward the mean w of the batch's samples that carry that
    label, weighted by the label's weight in c.

    ``forward(z, c, truncation_psi)``: ``(B, z_dim)`` and ``(B, c_dim)`` to ``(B, w_dim)``.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        embed_dim: int,
        n_layers: int,
        lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.w_avg_beta = w_avg_beta
        self.embed = EqualLinear(c_dim, embed_dim, bias=False) if c_dim > 0 else None
        dims = [z_dim + (embed_dim if c_dim > 0 else 0)] + [w_dim] * n_layers
        self.net = nn.Sequential(
            *(
                EqualLinear(i, o, lr_mul=lr_mul, activation=True)
                for i, o in itertools.pairwise(dims)
            )
        )
        self.register_buffer("w_avg", torch.zeros(max(c_dim, 1), w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        update_w_avg: bool | None = None,
    ) -> torch.Tensor:
        """``update_w_avg`` defaults to ``self.training`` (pass False for the second latent of
        style mixing, which is not a sample of its own)."""
        c = self._check_c(c, z.shape[0])
        x = pixel_norm(z)
        if self.embed is not None:
            x = torch.cat([x, pixel_norm(self.embed(c.to(x.dtype)))], dim=1)
        w = self.net(x)
        update = self.training if update_w_avg is None else update_w_avg
        if update:
            self._update_w_avg(w.detach(), c)
        if truncation_psi != 1.0:
            w = self.w_avg_for(c).to(w.dtype).lerp(w, truncation_psi)
        return w

    @torch.no_grad()
    def _update_w_avg(self, w: torch.Tensor, c: torch.Tensor | None) -> None:
        w = w.to(self.w_avg.dtype)
        if c is None:
            self.w_avg.copy_(w.mean(dim=0, keepdim=True).lerp(self.w_avg, self.w_avg_beta))
            return
        weight = c.to(w.dtype).clamp_min(0.0)  # (B, c_dim)
        total = weight.sum(dim=0)  # each label's weight in the batch
        label_mean = (weight.t() @ w) / total.clamp_min(1e-8)[:, None]  # (c_dim, w_dim)
        moved = label_mean.lerp(self.w_avg, self.w_avg_beta)
        self.w_avg.copy_(torch.where(total[:, None] > 0, moved, self.w_avg))  # absent: unmoved

    def w_avg_for(self, c: torch.Tensor | None) -> torch.Tensor:
        """The average w for each condition: ``(B, c_dim)`` to ``(B, w_dim)``, the rows of
        ``w_avg`` combined with the condition's weights normalised to sum 1 (so
        ``horror:0.7+comedy:0.3`` truncates toward 0.7 horror's average + 0.3 comedy's). A zero
        condition gets the mean over labels. Unconditional: ``(1, w_dim)``."""
        if self.embed is None:
            return self.w_avg
        c = self._check_c(c, None).to(self.w_avg.dtype).clamp_min(0.0)
        total = c.sum(dim=1, keepdim=True)
        uniform = torch.full_like(c, 1.0 / self.c_dim)
        weight = torch.where(total > 0, c / total.clamp_min(1e-8), uniform)
        return weight @ self.w_avg

    def _check_c(self, c: torch.Tensor | None, batch: int | None) -> torch.Tensor | None:
        if self.c_dim == 0:
            return None
        if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"condition of shape {got}: expected (B, {self.c_dim})")
        if batch is not None and c.shape[0] != batch:
            raise ValueError(f"{c.shape[0]} conditions for a batch of {batch}")
        return c


# --- synthesis network --------------------------------------------------------------------------


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


# --- generator ----------------------------------------------------------------------------------


def style_crossover(
    num_ws: int, mixing_prob: float, generator: torch.Generator | None = None
) -> int:
    """Style mixing regularisation's draw: with probability ``mixing_prob`` a crossover layer in
    ``[1, num_ws)`` (layers from it on take the second latent's w), otherwise ``num_ws`` (no
    mixing). One crossover per batch, as in StyleGAN2. Draws come from ``generator`` (a CPU
    generator) or the global CPU RNG, so a run with restored RNG states repeats them."""
    if num_ws < 2 or mixing_prob <= 0:
        return num_ws
    if torch.rand((), generator=generator).item() >= mixing_prob:
        return num_ws
    return int(torch.randint(1, num_ws, (), generator=generator))


class StyleGenerator(nn.Module):
    """Mapping and synthesis networks together. ``forward(z, c, truncation_psi, noise_mode)``:
    ``(B, z_dim)`` and ``(B, c_dim)`` (None when ``c_dim == 0``) to ``(B, 3, H, W)`` roughly
    in ``[-1, 1]``. ``StyleGenerator(**g.config)`` rebuilds the same architecture.
    """

    def __init__(
        self,
        z_dim: int = 128,
        c_dim: int = 0,
        w_dim: int = 128,
        image_size: tuple[int, int] = (64, 128),
        embed_dim: int | None = None,
        mapping_layers: int = 4,
        mapping_lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
        channel_base: int = 4096,
        channel_max: int = 128,
        min_side: int = 2,
    ):
        super().__init__()
        embed_dim = w_dim if embed_dim is None else int(embed_dim)
        self._config = {
            "z_dim": int(z_dim),
            "c_dim": int(c_dim),
            "w_dim": int(w_dim),
            "image_size": [int(image_size[0]), int(image_size[1])],
            "embed_dim": embed_dim,
            "mapping_layers": int(mapping_layers),
            "mapping_lr_mul": float(mapping_lr_mul),
            "w_avg_beta": float(w_avg_beta),
            "channel_base": int(channel_base),
            "channel_max": int(channel_max),
            "min_side": int(min_side),
        }
        self.z_dim, self.c_dim, self.w_dim = int(z_dim), int(c_dim), int(w_dim)
        self.mapping = MappingNetwork(
            z_dim, c_dim, w_dim, embed_dim, mapping_layers, mapping_lr_mul, w_avg_beta
        )
        self.synthesis = SynthesisNetwork(w_dim, image_size, channel_base, channel_max, min_side)
        self.num_ws = self.synthesis.num_ws
        self.image_size = self.synthesis.image_size

    @property
    def config(self) -> dict:
        """Every constructor argument, JSON-ready (stored in the weight file's header)."""
        return dict(self._config, image_size=list(self._config["image_size"]))

    def ws(
        self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0
    ) -> torch.Tensor:
        """``(B, num_ws, w_dim)``: the same w for every layer."""
        w = self.mapping(z, c, truncation_psi)
        return w[:, None].expand(-1, self.num_ws, -1)

    def mixed_ws(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        z2: torch.Tensor | None = None,
        mixing_prob: float = 0.9,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Training styles with mixing: ``(B, num_ws, w_dim)``, layers from
        :func:`style_crossover`'s draw on taken from the second latent ``z2`` (default: drawn
        from the global RNG on z's device), which shares the condition and leaves ``w_avg``
        alone (it is not a sample of its own)."""
        ws = self.ws(z, c)
        cutoff = style_crossover(self.num_ws, mixing_prob, generator)
        if cutoff == self.num_ws:
            return ws
        if z2 is None:
            z2 = torch.randn_like(z)
        w2 = self.mapping(z2, c, update_w_avg=False)
        return torch.cat([ws[:, :cutoff], w2[:, None].expand(-1, self.num_ws - cutoff, -1)], 1)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        noise_mode: str = "random",
    ) -> torch.Tensor:
        return self.synthesis(self.ws(z, c, truncation_psi), noise_mode)


# --- discriminator ------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a 2x average-pool between, plus a pooled 1x1 skip, summed and
    scaled by 1/sqrt(2). ``(B, in_ch, H, W) -> (B, out_ch, H/2, W/2)``"""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, in_ch, 3, padding=1)
        self.conv2 = EqualConv2d(in_ch, out_ch, 3, padding=1)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(lrelu(self.conv1(x)), 2)
        out = lrelu(self.conv2(out))
        return (out + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, n_channels: int = 1) -> torch.Tensor:
    """Append ``n_channels`` maps holding the standard deviation of the features across groups of
    samples, so D can see a lack of variety (mode collapse). The group is the largest divisor of
    the batch up to ``group_size``. ``(B, C, H, W) -> (B, C + n_channels, H, W)``"""
    b, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, b) + 1) if b % d == 0)
    y = x.reshape(g, -1, n_channels, c // n_channels, h, w)
    y = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt()  # (B/g, n, C/n, H, W)
    y = y.mean(dim=(2, 3, 4)).reshape(-1, n_channels, 1, 1)  # (B/g, n, 1, 1)
    return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


class StyleDiscriminator(nn.Module):
    """Residual discriminator with minibatch standard deviation and a projection condition.

    From RGB at the image size, residual blocks halve the resolution down to the synthesis
    network's smallest size (2x4 for 64x128); then minibatch stddev, a 3x3 convolution and a
    linear layer give the features ``h``. The output is ``linear(h) + <embed(c), h>`` (Miyato &
    Koyama's projection: affine in c); ``c_dim == 0`` is unconditional.

    ``forward(images, c)``: ``(B, 3, H, W)`` in ``[-1, 1]`` and ``(B, c_dim)`` to ``(B,)`` logits.
    """

    def __init__(
        self,
        c_dim: int = 0,
        image_size: tuple[int, int] = (64, 128),
        channel_base: int = 4096,
        channel_max: int = 128,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        min_side: int = 2,
    ):
        super().__init__()
        self._config = {
            "c_dim": int(c_dim),
            "image_size": [int(image_size[0]), int(image_size[1])],
            "channel_base": int(channel_base),
            "channel_max": int(channel_max),
            "mbstd_group": int(mbstd_group),
            "mbstd_channels": int(mbstd_channels),
            "min_side": int(min_side),
        }
        self.c_dim = int(c_dim)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.mbstd_group, self.mbstd_channels = mbstd_group, mbstd_channels
        (w0, h0), n_up = pyramid(self.image_size, min_side)
        chans = level_channels((w0, h0), n_up, channel_base, channel_max)
        self.from_rgb = EqualConv2d(3, chans[n_up], 1)
        self.blocks = nn.Sequential(*(ResBlock(chans[i], chans[i - 1]) for i in range(n_up, 0, -1)))
        ch = chans[0]
        if ch % mbstd_channels:
            raise ValueError(f"mbstd_channels {mbstd_channels} must divide {ch} channels")
        self.final_conv = EqualConv2d(ch + mbstd_channels, ch, 3, padding=1)
        self.final_linear = EqualLinear(ch * h0 * w0, ch, activation=True)
        self.out = EqualLinear(ch, 1)
        self.embed = EqualLinear(c_dim, ch, bias=False) if c_dim > 0 else None
        self.proj_scale = 1.0 / math.sqrt(ch)  # keeps <embed(c), h> on the scale of linear(h)

    @property
    def config(self) -> dict:
        """Every constructor argument, JSON-ready."""
        return dict(self._config, image_size=list(self._config["image_size"]))

    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(lrelu(self.from_rgb(images)))
        x = minibatch_stddev(x, self.mbstd_group, self.mbstd_channels)
        h = self.final_linear(lrelu(self.final_conv(x)).flatten(1))  # (B, ch)
        logits = self.out(h).squeeze(1)
        if self.embed is None:
            return logits
        if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"condition of shape {got}: expected (B, {self.c_dim})")
        return logits + (self.embed(c.to(h.dtype)) * h).sum(dim=1) * self.proj_scale
