"""The paths an engine can run a model on, and how it chooses between them.

- ``torch``: the module as the engine has always run it (its ``optimize_for`` variant where the
  model has one), eager or compiled per the compile policy.
- ``torch-plain``: the module as built, without its ``optimize_for`` variant (a candidate only
  where the variant is a different module: the CycleGAN's Winograd path on the CPU in fp32).
- ``openvino``: the module converted once (:mod:`posterforge.backends.openvino`) and compiled by
  OpenVINO for the CPU, per input shape.

``--backend torch`` and ``--backend openvino`` ask for one; ``auto`` lets a short calibration on
this machine choose (:mod:`posterforge.backends.calibration`), cached in the posterforge home so
that a resumed job takes the same path and writes the same bytes. Importing this package does not
import torch or OpenVINO.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from posterforge.catalog import ResolvedModel

Backend = Literal["auto", "torch", "openvino"]
BACKENDS: tuple[str, ...] = get_args(Backend)

TORCH, PLAIN, OPENVINO = "torch", "torch-plain", "openvino"
PATHS = (TORCH, PLAIN, OPENVINO)


class BackendFailed(Exception):
    """A backend cannot take this model here; the message is one line for the note."""


def size_class(pixels: int) -> str:
    """Frames of similar size rank the paths alike: one calibration serves a class."""
    if pixels <= 320 * 320:
        return "small"
    if pixels <= 768 * 768:
        return "medium"
    return "large"


def architecture(model: ResolvedModel) -> str:
    """The model's class and config, not its weights: what its speed depends on (a style
    trained anew keeps its architecture's calibration)."""
    config = (model.header or {}).get("config", {})
    text = json.dumps(config, sort_keys=True, default=str)
    return f"{model.cls.name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
