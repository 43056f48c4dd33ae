"""Stabilised video translation (``translate --stabilize``): instance-norm statistics shared
across the frames of a shot.

Translated frame by frame, a network with instance norm normalises each frame by its own
per-channel mean and variance, which move with sensor noise and small motions, so colours pulse
where the input is still. :class:`SharedNorm` replaces an instance norm by one that normalises
each frame with an exponential running average of those statistics over the frames so far::

    mean_t = s * mean_(t-1) + (1 - s) * mean(frame t)      (the same for the variance)

per layer and channel, where ``s`` is the strength (0: plain instance norm; 0.9 averages over
about ten frames). The average restarts at each scene cut (:func:`reset`), and its state
(:func:`norm_state`) is small (two floats per channel per layer), so a resumable video keeps it
beside each finished segment.

Batches: each row of a ``(B, C, H, W)`` batch is a frame, in order. The running average is taken
row after row (a loop over ``B`` on ``(C,)`` vectors, after the batched statistics), so a frame
sees exactly the state it would see if the frames ran one at a time: batch 4 gives batch 1's
frames (up to the convolutions' own rounding, which differs by batch size).

The contract (see :class:`posterforge.models.Translator`): a built translator offers the
capability by defining ``stabilized(strength) -> nn.Module``, a module of the same weights whose
instance norms are :class:`SharedNorm` layers (:func:`share_norms` makes them from
``nn.InstanceNorm2d``); the core finds them to reset, read and restore their state.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from posterforge.errors import PosterforgeError

DEFAULT_STRENGTH = 0.5  # as jobs.translate.STABILIZE_STRENGTH
CAPABILITY = "stabilized(strength)"


def check_strength(strength: float) -> float:
    """The strength as a float in ``[0, 1)``, or :class:`PosterforgeError`."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise PosterforgeError(f"--stabilize strength {strength!r} is no number") from None
    if not 0 <= value < 1:
        raise PosterforgeError(
            f"--stabilize strength {value:g} is out of range: use 0 <= strength < 1"
        )
    return value


class SharedNorm(nn.Module):
    """Instance norm over ``(B, C, H, W)`` whose per-channel mean and variance are a running
    average across calls (and across the batch's rows, in order) until :meth:`reset`.

    Made from an ``nn.InstanceNorm2d`` (its affine parameters are shared, not copied). Statistics
    and the state are fp32 whatever the input's dtype; the output has the input's dtype.

    >>> norm = SharedNorm(nn.InstanceNorm2d(2), strength=0.5)
    >>> x = torch.randn(3, 2, 4, 4)
    >>> torch.allclose(norm(x[:1]), nn.functional.instance_norm(x[:1]), atol=1e-5)
    True
    >>> norm.reset(); y = norm(x)  # three frames in one batch ...
    >>> norm.reset(); z = torch.cat([norm(x[i:i + 1]) for i in range(3)])  # ... or one by one
    >>> torch.allclose(y, z, atol=1e-6)
    True
    """

    def __init__(self, norm: nn.Module, strength: float):
        super().__init__()
        self.num_features, self.eps = norm.num_features, norm.eps
        self.affine = bool(norm.affine)
        self.weight, self.bias = norm.weight, norm.bias  # shared Parameters (None when plain)
        self.strength = check_strength(strength)
        self.mean: torch.Tensor | None = None  # (C,) fp32, the running state
        self.var: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"{self.num_features}, strength={self.strength}, affine={self.affine}"

    def reset(self) -> None:
        self.mean = self.var = None

    def _scale_shift(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row ``(B, C, 1, 1)`` scale and shift (fp32) that normalise ``x``; advances the
        state over the rows in order."""
        var, mean = torch.var_mean(x.float(), dim=(2, 3), unbiased=False)  # (B, C) each
        s = self.strength
        run_m, run_v = self.mean, self.var
        means, variances = [], []
        for row in range(x.shape[0]):
            if run_m is None or run_v is None:
                run_m, run_v = mean[row], var[row]
            else:
                run_m = run_m * s + mean[row] * (1 - s)
                run_v = run_v * s + var[row] * (1 - s)
            means.append(run_m)
            variances.append(run_v)
        self.mean, self.var = run_m, run_v
        scale = torch.rsqrt(torch.stack(variances) + self.eps)
        shift = -torch.stack(means) * scale
        if self.affine:
            scale = scale * self.weight.float()
            shift = shift * self.weight.float() + self.bias.float()
        return scale[:, :, None, None], shift[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self._scale_shift(x)
        return torch.addcmul(shift, x.float(), scale).to(x.dtype)

    def forward_(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` written into ``x`` (fp32, for an in-place inference path)."""
        scale, shift = self._scale_shift(x)
        return x.mul_(scale).add_(shift)


def share_norms(module: nn.Module, strength: float) -> nn.Module:
    """``module`` with every ``nn.InstanceNorm2d`` in it replaced by a :class:`SharedNorm` (in
    place; the parameters, and so the ``state_dict``, are the same). Returns ``module``."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.InstanceNorm2d):
            setattr(module, name, SharedNorm(child, strength))
        else:
            share_norms(child, strength)
    return module


def shared_norms(module: nn.Module) -> list[SharedNorm]:
    return [m for m in module.modules() if isinstance(m, SharedNorm)]


def stabilized(module: nn.Module, strength: float, family: str) -> nn.Module:
    """The built translator's stabilised form, or one line saying the family has none."""
    make = getattr(module, "stabilized", None)
    out = make(check_strength(strength)) if callable(make) else None
    if out is None or not shared_norms(out):
        raise PosterforgeError(
            f"--stabilize: the {family} translator cannot be stabilised: its network does not "
            f"offer {CAPABILITY} (shared instance-norm statistics)"
        )
    return out


def reset(module: nn.Module) -> None:
    for norm in shared_norms(module):
        norm.reset()


def norm_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Every :class:`SharedNorm`'s running mean and variance, on the CPU, by layer order (empty
    entries are left out: a layer that has seen no frame since :func:`reset`)."""
    state = {}
    for i, norm in enumerate(shared_norms(module)):
        if norm.mean is not None and norm.var is not None:
            state[f"{i}.mean"] = norm.mean.detach().float().cpu().clone()
            state[f"{i}.var"] = norm.var.detach().float().cpu().clone()
    return state


def set_norm_state(
    module: nn.Module, state: dict[str, torch.Tensor], device: torch.device | str = "cpu"
) -> None:
    """Restore what :func:`norm_state` returned, onto ``device`` (the engine's). Raises
    ``ValueError`` when it does not fit the module's layers."""
    norms = shared_norms(module)
    if any(int(k.split(".")[0]) >= len(norms) for k in state):
        raise ValueError(f"state for more layers than the network's {len(norms)}")
    for i, norm in enumerate(norms):
        mean, var = state.get(f"{i}.mean"), state.get(f"{i}.var")
        if mean is None or var is None:
            norm.reset()
            continue
        if mean.shape != (norm.num_features,) or var.shape != (norm.num_features,):
            raise ValueError(f"layer {i}: {tuple(mean.shape)} for {norm.num_features} channels")
        norm.mean, norm.var = mean.to(device), var.to(device)


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(state) if state else save({"empty": torch.zeros(0)})


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A state file :func:`state_bytes` wrote; ``ValueError`` when it is unreadable."""
    from safetensors.torch import load

    try:
        state = load(path.read_bytes())
    except Exception as e:  # OSError, and safetensors' own error types
        raise ValueError(f"{path.name}: {e}") from None
    state.pop("empty", None)
    return state


__all__ = [
    "CAPABILITY", "DEFAULT_STRENGTH", "SharedNorm", "check_strength", "load_state",
    "norm_state", "reset", "set_norm_state", "share_norms", "shared_norms", "stabilized",
    "state_bytes",
]  # fmt: skip
