"""OpenVINO for the CPU: a built module converted once (``openvino.convert_model`` on the torch
module, dynamic batch and frame size), compiled per input shape.

The converted model is kept in the posterforge home as OpenVINO IR, named by the weights (the
engine's ``model_id``, which holds their sha256), the entry (``forward`` or ``sample``), the
precision and the torch and OpenVINO versions; the compiled blobs go to OpenVINO's own model
cache (``CACHE_DIR``), which keys them by model, shape, device and settings. So a later run on
this machine starts in well under a second instead of converting (10-25 s for the vintage ResNet)
and compiling.

``openvino.convert_model`` was kept over ``torch.onnx.export``: it needs no ``onnx`` package and
traced the CycleGAN, the genre cGAN and the test models as they are. It traces with autocast off,
also when called under the engine's bf16 autocast (the calibration runs every candidate so): the
converter has no rule for autocast's casts (``aten::_autocast_to_reduced_precision``), and bf16
is OpenVINO's inference hint instead, applied when compiling. Any failure (no OpenVINO, a module
it cannot convert, a compile error) raises :class:`BackendFailed` with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from posterforge.backends import BackendFailed

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}  # fp16 stays on torch


def unavailable() -> str | None:
    """Why OpenVINO cannot run here (one line), or None when it can."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "openvino is not installed (pip install openvino)"
    except Exception as e:  # a broken install: a missing library, say
        return f"openvino failed to load: {_first_line(e)}"
    return None


def version() -> str:
    """OpenVINO's version, or ``none`` when it cannot run here."""
    if unavailable() is not None:
        return "none"
    import openvino

    return str(openvino.__version__)


def cache_dir() -> Path:
    from posterforge.store import home

    return home() / "openvino"


class _Sample(torch.nn.Module):
    """A generator's ``sample(z, conditions)`` as a module's forward, for the converter."""

    def __init__(self, module: torch.nn.Module, conditional: bool):
        super().__init__()
        self.module, self.conditional = module, conditional

    def forward(self, z: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        return self.module.sample(z, conditions[0] if self.conditional else None)


class OpenVINOPath:
    """``module``'s ``entry`` compiled by OpenVINO: called with the engine's CPU float tensors
    (None for no conditions), it returns a float CPU tensor, as the torch module would."""

    def __init__(
        self, module: torch.nn.Module, entry: str, precision: str, model_id: str, side: int = 64
    ):
        if (why := unavailable()) is not None:
            raise BackendFailed(why)
        if precision not in _OV_PRECISION:
            raise BackendFailed(f"openvino here runs fp32 and bf16, not {precision}")
        import openvino as ov

        self.module, self.entry, self.model_id, self.side = module, entry, model_id, side
        self.precision = precision
        self.config = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
            # as many threads as torch was given: no oversubscription beside the decode workers
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        }
        self.core = ov.Core()
        if model_id:  # an unnamed model has nothing to key a cache by
            self.core.set_property({"CACHE_DIR": str(cache_dir() / "compiled")})
        self._model: Any = None
        self._compiled: dict[tuple, Callable[..., Any]] = {}

    def __call__(self, *args: torch.Tensor | None) -> torch.Tensor:
        given = [a for a in args if a is not None]
        shapes = tuple(tuple(a.shape) for a in given)
        compiled = self._compiled.get(shapes) or self._compile(shapes, given)
        arrays = [a.detach().float().contiguous().numpy() for a in given]
        try:
            out = compiled(arrays)[0]
        except Exception as e:
            raise BackendFailed(f"openvino failed to run: {_first_line(e)}") from None
        return torch.from_numpy(out)

    def _compile(self, shapes: tuple, given: list[torch.Tensor]) -> Callable[..., Any]:
        model = self._converted(given).clone()
        try:
            model.reshape({i: list(s) for i, s in enumerate(shapes)})
            compiled = self.core.compile_model(model, "CPU", self.config)
        except Exception as e:
            raise BackendFailed(f"openvino could not compile it: {_first_line(e)}") from None
        self._compiled[shapes] = compiled
        return compiled

    def _converted(self, given: list[torch.Tensor]) -> Any:
        """The model, converted once per engine (read from the home when converted before)."""
        if self._model is not None:
            return self._model
        path = self._ir_path()
        if path is not None and path.is_file():
            try:
                self._model = self.core.read_model(str(path))
                return self._model
            except Exception:  # an unreadable file: convert again, over it
                pass
        self._model = self._convert(given)
        if path is not None:
            _save(self._model, path)
        return self._model

    def _convert(self, given: list[torch.Tensor]) -> Any:
        import openvino as ov

        if self.entry == "forward":
            module, dynamic = self.module, [ov.PartialShape([-1, given[0].shape[1], -1, -1])]
        else:
            module = _Sample(self.module, conditional=len(given) > 1)
            dynamic = [ov.PartialShape([-1, *a.shape[1:]]) for a in given]
        example = tuple(_small(a, self.side) if self.entry == "forward" else a[:1] for a in given)
        # autocast off, whatever the caller runs under (see the module's docstring)
        try:  # the tracer's warnings are about tracing, not for a user of the converted model
            with torch.no_grad(), torch.autocast("cpu", enabled=False), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ov.convert_model(module, example_input=example, input=dynamic)
        except Exception as e:
            raise BackendFailed(f"openvino could not convert it: {_first_line(e)}") from None

    def _ir_path(self) -> Path | None:
        if not self.model_id:
            return None
        about = [self.model_id, self.entry, self.precision, torch.__version__, version()]
        text = json.dumps(about)
        return cache_dir() / "models" / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.xml"


def _small(x: torch.Tensor, side: int) -> torch.Tensor:
    """The example a translator is traced with: its top left ``side`` x ``side`` corner (a size
    the model takes, from the engine) when the frame is larger: tracing runs the model once, and
    the converted model takes any size (a 1280x720 frame traces in seconds, a corner in a
    fraction)."""
    if min(x.shape[-2:]) <= side:
        return x[:1]
    return torch.zeros_like(x[:1, :, :side, :side])


def _save(model: Any, path: Path) -> None:
    """IR (``.xml`` + ``.bin``) written beside ``path`` and renamed into place, the ``.xml``
    last: a reader finds a whole pair or none. Only ever saves work: failures are ignored."""
    import openvino as ov

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            tmp_xml = Path(tmp) / path.name
            ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
            os.replace(tmp_xml.with_suffix(".bin"), path.with_suffix(".bin"))
            os.replace(tmp_xml, path)
    except Exception:
        pass


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]
