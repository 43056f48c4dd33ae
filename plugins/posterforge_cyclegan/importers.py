"""Explicit key mappings from foreign CycleGAN generator checkpoints to our ResnetGenerator.

Both supported layouts are ``nn.Sequential`` stacks indexed the same way (junyanz's reference
``ResnetGenerator`` and vintagify's copy of it):

    0 pad | 1 conv 2 norm 3 relu | 4 conv 5 norm 6 relu | 7 conv 8 norm 9 relu |
    10 .. 10+n-1 residual blocks | then per upsampling: convT, norm, relu (x2) | pad, conv, tanh

They differ in the residual block's attribute name (``conv_block`` vs ``block``), in dropout (the
reference inserts one, shifting the second conv from index 5 to 6), and in affine norms.
"""

from __future__ import annotations

import re
from typing import Any

from posterforge.plugin import Kind
from posterforge_cyclegan.config import ResnetConfig

ARCH = "cyclegan-resnet"
_BLOCK = re.compile(r"^model\.(\d+)\.(conv_block|block)\.(\d+)\.")
# PyTorch < 0.4 saved running stats for InstanceNorm; they mean nothing here (the reference
# code deletes them too).
_STALE = ("running_mean", "running_var", "num_batches_tracked")


def _block_indices(state: dict[str, Any], attr: str) -> list[int]:
    found = {int(m.group(1)) for k in state if (m := _BLOCK.match(k)) and m.group(2) == attr}
    return sorted(found)


def detect_reference(state: dict[str, Any]) -> bool:
    return bool(_block_indices(state, "conv_block")) and "model.1.weight" in state


def detect_vintagify(state: dict[str, Any]) -> bool:
    return bool(_block_indices(state, "block")) and "model.1.weight" in state


def _convert(state: dict[str, Any], attr: str) -> tuple[dict[str, Any], dict[str, Any]]:
    state = {k: v for k, v in state.items() if not k.endswith(_STALE)}
    blocks = _block_indices(state, attr)
    if not blocks or blocks != list(range(10, 10 + len(blocks))):
        raise ValueError(f"residual blocks expected at model.10 onwards, found {blocks[:3]}...")
    n = len(blocks)
    ngf = state["model.1.weight"].shape[0]
    affine = "model.2.weight" in state
    # The block's second conv sits at 5, or at 6 when the reference inserted dropout.
    at6 = state.get(f"model.10.{attr}.6.weight")
    second = 6 if at6 is not None and at6.ndim == 4 else 5
    up0, up1 = 10 + n, 13 + n
    head = 17 + n
    mapping: dict[str, str] = {
        "stem.conv": "model.1",
        "down.0.conv": "model.4",
        "down.1.conv": "model.7",
        "up.0.conv": f"model.{up0}",
        "up.1.conv": f"model.{up1}",
        "head": f"model.{head}",
    }
    if affine:
        mapping.update(
            {
                "stem.norm": "model.2",
                "down.0.norm": "model.5",
                "down.1.norm": "model.8",
                "up.0.norm": f"model.{up0 + 1}",
                "up.1.norm": f"model.{up1 + 1}",
            }
        )
    for i, idx in enumerate(blocks):
        mapping[f"blocks.{i}.conv1"] = f"model.{idx}.{attr}.1"
        mapping[f"blocks.{i}.conv2"] = f"model.{idx}.{attr}.{second}"
        if affine:
            mapping[f"blocks.{i}.norm1"] = f"model.{idx}.{attr}.2"
            mapping[f"blocks.{i}.norm2"] = f"model.{idx}.{attr}.{second + 1}"
    out: dict[str, Any] = {}
    for ours, theirs in mapping.items():
        for param in ("weight", "bias"):
            out[f"{ours}.{param}"] = state.pop(f"{theirs}.{param}")
    if state:
        raise ValueError(f"unexpected tensors: {', '.join(sorted(state)[:4])}")
    config = ResnetConfig(
        ngf=int(ngf),
        n_blocks=n,
        affine=affine,
        in_channels=int(out["stem.conv.weight"].shape[1]),
        out_channels=int(out["head.weight"].shape[0]),
    )
    return out, {"kind": Kind.TRANSLATOR, "arch": ARCH, "config": config.to_dict(), "format": 1}


def convert_reference(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return _convert(state, "conv_block")


def convert_vintagify(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return _convert(state, "block")
