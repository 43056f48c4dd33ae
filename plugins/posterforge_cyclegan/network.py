"""The CycleGAN ResNet generator (Zhu et al. 2017; Johnson et al. 2016), with readable names.

reflection pad + 7x7 conv -> two stride-2 convs -> N residual blocks -> two stride-2 transposed
convs -> reflection pad + 7x7 conv -> tanh; instance norm (affine or not) after every conv but
the last. Weights are stored under the names below; importers map foreign layouts onto them.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from posterforge.plugin import SharedNorm, share_norms
from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.winograd import WinogradConv3x3, Workspace, winograd_conv3x3


def _norm(channels: int, affine: bool) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)


def _instance_norm_(x: torch.Tensor, norm: nn.Module, relu: bool = False) -> torch.Tensor:
    """A :class:`SharedNorm` (``translate --stabilize``) normalises in place by its own rule.
    Else ``norm(x)`` (then ReLU) written into ``x`` itself, for inference: bit-identical to
    ``F.instance_norm``, which is batch norm over ``(1, B*C, H, W)``, here run by its ``out=``
    kernel with ``x`` as the output (it reads each element before writing it). No new
    image-sized tensor, so a 1280x720 frame does not page-fault in a fresh buffer per layer:
    17 ms against 41 ms for ``instance_norm`` at 256 x 180x320 on this project's CPUs."""
    if isinstance(norm, SharedNorm):
        x = norm.forward_(x)
        return x.relu_() if relu else x
    b, c, h, w = x.shape
    weight = bias = None
    if norm.affine:
        weight, bias = norm.weight.repeat(b), norm.bias.repeat(b)
    if x.is_contiguous():
        flat = x.view(1, b * c, h, w)
        mean, invstd = x.new_empty(b * c), x.new_empty(b * c)
        torch.ops.aten.native_batch_norm.out(
            flat, weight, bias, None, None, True, 0.0, norm.eps,
            out=flat, save_mean=mean, save_invstd=invstd,
        )  # fmt: skip
    else:  # a cropped view (Winograd's tiles past the edge): that kernel needs it contiguous
        x.copy_(F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=norm.eps))
    return x.relu_() if relu else x


def _in_place(module: nn.Module) -> bool:
    """Whether ``module`` may overwrite its intermediate tensors: the CPU inference variant
    (:func:`cpu_inference`), and only while no gradient is being recorded."""
    return module.inplace and not torch.is_grad_enabled() and not torch.compiler.is_compiling()


class ConvNormReLU(nn.Module):
    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        kernel: int,
        stride: int,
        affine: bool,
        transposed: bool = False,
        reflect: int = 0,
    ):
        super().__init__()
        self.pad = nn.ReflectionPad2d(reflect) if reflect else nn.Identity()
        if transposed:
            self.conv: nn.Module = nn.ConvTranspose2d(
                cin, cout, kernel, stride=stride, padding=1, output_padding=1
            )
        else:
            self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=0 if reflect else 1)
        self.norm = _norm(cout, affine)

    inplace = False  # see cpu_inference

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.pad(x))
        return (
            _instance_norm_(y, self.norm, relu=True)
            if _in_place(self)
            else torch.relu(self.norm(y))
        )


class ResidualBlock(nn.Module):
    winograd = False  # see ResnetGenerator.fast_cpu_training
    # Winograd pays only where its GEMMs are big. One thread, forward + backward: 83 ms against
    # oneDNN's 143 ms at 256 channels, 64x64 (ngf 64, 256x256 crops); about even at 256 x 32x32
    # or 128 x 64x64; 2x slower for tiny nets (32 channels, 8x8), where Python overhead rules.
    winograd_min_channels = 256
    winograd_min_pixels = 64 * 64  # batch x height x width of the conv's output

    def __init__(self, channels: int, affine: bool):
        super().__init__()
        self.pad1, self.conv1 = nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3)
        self.norm1 = _norm(channels, affine)
        self.pad2, self.conv2 = nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3)
        self.norm2 = _norm(channels, affine)

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if (
            self.winograd
            and c >= self.winograd_min_channels
            and n * (h - 2) * (w - 2) >= self.winograd_min_pixels
            and _cpu_fp32(x)
        ):
            return winograd_conv3x3(x, conv.weight, conv.bias)
        return conv(x)

    inplace = False  # see cpu_inference

    def forward(self, x: torch.Tensor, workspace: Workspace | None = None) -> torch.Tensor:
        if _in_place(self):
            if workspace is not None:  # Winograd convs that pad themselves (cpu_inference)
                # both convs write into the buffer that does not hold x; the first's result is
                # consumed (tiled) before the second overwrites it
                out = "b" if workspace.holds("a", x) else "a"
                y = _instance_norm_(self.conv1(x, workspace, out), self.norm1, relu=True)
                return _instance_norm_(self.conv2(y, workspace, out), self.norm2).add_(x)
            y = _instance_norm_(self.conv1(self.pad1(x)), self.norm1, relu=True)
            return _instance_norm_(self.conv2(self.pad2(y)), self.norm2).add_(x)
        y = torch.relu(self.norm1(self._conv(self.conv1, self.pad1(x))))
        return x + self.norm2(self._conv(self.conv2, self.pad2(y)))


def _cpu_fp32(x: torch.Tensor) -> bool:
    """Plain fp32 on the CPU: not under autocast (whose bf16 convs are another fast path), not
    while compiling."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


class ResnetGenerator(nn.Module):
    """Maps ``(B, 3, H, W)`` in ``[-1, 1]`` to the same; H and W must be multiples of 4.
    ``ResnetGenerator(ResnetConfig.from_dict(header["config"]))`` rebuilds a stored one."""

    def __init__(self, config: ResnetConfig | None = None):
        super().__init__()
        self.config = config = ResnetConfig() if config is None else config
        ngf, affine, cin = config.ngf, config.affine, config.in_channels
        self.stem = ConvNormReLU(cin, ngf, kernel=7, stride=1, affine=affine, reflect=3)
        self.down = nn.Sequential(
            ConvNormReLU(ngf, ngf * 2, kernel=3, stride=2, affine=affine),
            ConvNormReLU(ngf * 2, ngf * 4, kernel=3, stride=2, affine=affine),
        )
        self.blocks = nn.Sequential(
            *(ResidualBlock(ngf * 4, affine) for _ in range(config.n_blocks))
        )
        self.up = nn.Sequential(
            ConvNormReLU(ngf * 4, ngf * 2, kernel=3, stride=2, affine=affine, transposed=True),
            ConvNormReLU(ngf * 2, ngf, kernel=3, stride=2, affine=affine, transposed=True),
        )
        self.head_pad, self.head = nn.ReflectionPad2d(3), nn.Conv2d(ngf, config.out_channels, 7)
        self.channels_last_head = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head_pad(self.up(self.blocks(self.down(self.stem(x)))))
        if self.channels_last_head and _cpu_fp32(x):
            x = x.contiguous(memory_format=torch.channels_last)
        return torch.tanh(self.head(x))

    def fast_cpu_training(self, on: bool = True) -> ResnetGenerator:
        """On CPU fp32 tensors, compute the residual 3x3 convs (forward and both gradients) by
        trainable Winograd F(4x4, 3x3) where they are big enough for it to pay (see
        ResidualBlock), and feed the 7x7 head conv channels-last; elsewhere (CUDA, other dtypes)
        nothing changes. Parameters and state_dict are untouched.

        Measured on a 2-core AVX-512 CPU, one thread, fp32: a 256->256 conv at 64x64, forward and
        backward, 83 ms against oneDNN's 143 ms; the 64->3 head conv with its pad and tanh, 171 ms
        against 228 ms in NCHW (oneDNN's NCHW path for Cout=3 is slow, its backward above all).
        The 3x3 down convs and the transposed convs are slower channels-last, so they stay NCHW.
        """
        for block in self.blocks:
            block.winograd = on
        self.channels_last_head = on
        return self


class UnitRange(nn.Module):
    """Adapts a ``[-1, 1]`` network to the translator boundary: ``[0, 1]`` in and out."""

    def __init__(self, net: nn.Module, multiple: int):
        super().__init__()
        self.net, self.multiple = net, multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1).add(1).mul(0.5)

    def optimize_for(self, device: torch.device, dtype: torch.dtype | None) -> nn.Module:
        """On the CPU in fp32, :func:`cpu_inference`. Elsewhere (cuDNN, autocast) the network
        is kept as is."""
        if device.type != "cpu" or dtype is not None:
            return self
        return UnitRange(cpu_inference(self.net), self.multiple)

    def stabilized(self, strength: float) -> UnitRange:
        """A copy whose instance norms share their statistics across frames (the translator
        contract's capability for ``translate --stabilize``; see :mod:`posterforge.stabilize`).
        Its :meth:`optimize_for` variant (Winograd, in place) keeps them."""
        return UnitRange(share_norms(copy.deepcopy(self.net), strength), self.multiple)


class SharedWorkspace(nn.Sequential):
    """The residual blocks of :func:`cpu_inference`: in place, one :class:`Workspace` is shared
    by all of them for one pass, so the whole chain allocates three buffers (the tiles and two
    outputs in turn) instead of two tensors per conv; it is dropped when the pass ends, so
    memory between passes (and in the up-sampling layers after it) is what it was."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not (len(self) and _in_place(self[0])):
            return super().forward(x)
        workspace = Workspace()
        for block in self:
            x = block(x, workspace)
        return x


def cpu_inference(net: ResnetGenerator) -> ResnetGenerator:
    """A copy of ``net`` for inference on the CPU in fp32; ``net`` is left untouched.

    - The residual 3x3 convs run as Winograd F(4x4, 3x3), padding while they tile: measured 21%
      (256x256) to 17% (1280x720) faster than oneDNN's direct convolution, outputs within 2e-5
      (see winograd.py).
    - Under ``torch.no_grad`` instance norm, ReLU and the residual sum work in place, so each
      layer allocates its conv's output and nothing else, and the residual blocks share three
      buffers (:class:`SharedWorkspace`): a frame's pass through nine blocks creates (and at
      1280x720 page-faults in) three block-sized tensors instead of 90, and the peak is lower.
    """
    net = winogradize(net)
    for module in net.modules():
        if isinstance(module, (ConvNormReLU, ResidualBlock)):
            module.inplace = True
    net.blocks = SharedWorkspace(*net.blocks)  # same children, same state_dict keys
    return net


def winogradize(net: nn.Module, m: int = 4) -> nn.Module:
    """A deep copy of ``net`` (a ``ResnetGenerator``) with every ``ResidualBlock``'s pads and
    convs replaced by :class:`WinogradConv3x3` that pad while tiling; ``net`` is left untouched.

    Only the residual blocks are converted: they carry ~88% of the FLOPs and are exactly the
    3x3/stride-1/reflection-padded case; the stem, strided and transposed convs stay as they are.
    """
    net = copy.deepcopy(net)
    for block in net.modules():
        if isinstance(block, ResidualBlock):
            block.conv1 = WinogradConv3x3(block.conv1, m, reflect=True)
            block.conv2 = WinogradConv3x3(block.conv2, m, reflect=True)
            block.pad1, block.pad2 = nn.Identity(), nn.Identity()
    return net
