"""``--precision auto``: bf16 where this device computes it natively and the model's bf16 output
stays close to its fp32 output, fp32 everywhere else (fp16 is never chosen, only asked for).

Native bf16 means a CPU with AVX512-BF16 or AMX (without them oneDNN emulates bf16, slower than
fp32) or a CUDA device that supports it. On the first use of a model on such a machine, bf16 and
fp32 run on a fixed probe input (:func:`probe_input`); more than :data:`TOLERANCE` grey levels
apart at the 99th percentile of ``|diff|`` (uint8 outputs) keeps fp32, with one note. The
decision is kept in ``$POSTERFORGE_HOME/precision.json`` under the calibration's machine key
(CPU model and flags, library versions), the model's arch and sha256 and the device, so a resumed
job decides the same and writes the same bytes; two runs deciding at once keep the first written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from posterforge.engine import Engine

log = logging.getLogger(__name__)

AUTO = "auto"
FILE = "precision.json"
TOLERANCE = 2.0  # grey levels at the 99th percentile: what issue 21 measured bf16 within (max 2)
QUANTILE = 0.99
NATIVE_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo's names for native bf16 units
PROBE_SIDE = 128  # a translator's probe frame, before padding to its size multiple
PROBE_BATCH = 4  # a generator's probe: this many samples from fixed noise


def native_bf16(device: torch.device, flags: str | None = None) -> str | None:
    """Why ``device`` computes bf16 natively (``"avx512_bf16"``, ``"CUDA bf16"``), or None.
    ``flags``: the CPU's flags (``/proc/cpuinfo`` when not given)."""
    if device.type == "cuda":
        return "CUDA bf16" if torch.cuda.is_bf16_supported() else None
    if device.type != "cpu":
        return None
    if flags is None:
        from posterforge.backends.calibration import cpu_identity

        flags = cpu_identity()["flags"]
    have = set(flags.split())
    return next((f for f in NATIVE_FLAGS if f in have), None)


def resolve(engine: Engine) -> tuple[str, str]:
    """The precision ``auto`` takes for ``engine`` (its module built, on its device, not yet
    optimised) and why, in words for the device line."""
    why = native_bf16(engine.device)
    if why is None:
        return "fp32", "auto: no native bf16 here"
    key = decision_key(engine)
    kept = lookup(key) if key is not None else None
    if kept is None:
        diff = probe_difference(engine)
        taken = "bf16" if diff <= TOLERANCE else "fp32"
        kept = {"precision": taken, "p99": round(diff, 3), "date": time.strftime("%Y-%m-%d")}
        if key is not None:
            kept = remember(key, kept)
    if kept["precision"] == "bf16":
        return "bf16", f"auto: native {why}, probe within {TOLERANCE:g} grey levels"
    log.warning(
        "posterforge: note: bf16 differs from fp32 by %s grey levels at the 99th percentile on "
        "this model's probe (more than %g): staying on fp32 (--precision bf16 to use it anyway)",
        kept.get("p99", "?"), TOLERANCE,
    )  # fmt: skip
    return "fp32", "auto: bf16 refused by the probe"


def decision_key(engine: Engine) -> str | None:
    """The cache key of ``engine``'s decision; None for an unnamed model (nothing tells two of
    those apart, so each run probes again)."""
    if not engine.model_id:
        return None
    from posterforge.backends.calibration import machine_key

    device = engine.device.type
    if device == "cuda":
        device += ":" + torch.cuda.get_device_name(engine.device)
    about = [machine_key(), engine.model_id, engine.arch, device]
    return hashlib.sha256(json.dumps(about).encode()).hexdigest()[:24]


def probe_input(engine: Engine) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed probe on the engine's device: a translator's smooth frame with texture (the
    same pixels on every machine), or a generator's noise and its first label's conditions."""
    module = engine.module
    gen = torch.Generator().manual_seed(21)
    if not hasattr(module, "sample"):
        m, low = engine.multiple, engine.min_size  # the side padded as the engine would
        h = w = max(PROBE_SIDE + (-PROBE_SIDE % m), low + (-low % m))
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        rgb = torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(12 * (xx + yy))])
        noise = 0.08 * torch.rand(3, h, w, generator=gen)
        x = (0.9 * rgb + noise).clamp(0, 1).mul(255).round().div(255)  # an 8-bit image
        return x.unsqueeze(0).to(engine.device), None
    z = torch.randn(PROBE_BATCH, module.z_dim, generator=gen).to(engine.device)
    labels = getattr(module, "label_names", None)
    if not labels:
        return z, None
    row = module.conditions(labels[0]).reshape(1, -1).float().to(engine.device)
    return z, row.expand(PROBE_BATCH, -1).contiguous()


def probe_difference(engine: Engine) -> float:
    """The 99th percentile of ``|bf16 - fp32|`` in grey levels over the probe's uint8 output."""
    x, conditions = probe_input(engine)
    module = engine.module
    outs = []
    for bf16 in (False, True):
        with torch.inference_mode(), torch.autocast(
            engine.device.type, dtype=torch.bfloat16, enabled=bf16
        ):
            y = module.sample(x, conditions) if hasattr(module, "sample") else module(x)
        outs.append(engine.to_uint8(y).to(torch.int16))
    diff = (outs[1] - outs[0]).abs().float().flatten()
    return float(torch.quantile(diff, QUANTILE))


def cache_path() -> Path:
    from posterforge.store import home

    return home() / FILE


def lookup(key: str) -> dict[str, Any] | None:
    entry = _read().get(key)
    if isinstance(entry, dict) and entry.get("precision") in ("fp32", "bf16"):
        return entry
    return None


def remember(key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Keep ``entry`` for ``key`` unless another run kept one first; returns the one kept."""
    from posterforge.backends.calibration import keep_first

    valid = lambda kept: kept.get("precision") in ("fp32", "bf16")  # noqa: E731
    return keep_first(cache_path(), key, entry, valid)


def _read() -> dict[str, Any]:
    from posterforge.backends.calibration import read_entries

    return read_entries(cache_path())
