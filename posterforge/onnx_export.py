"""ONNX export of any exportable translator or generator (``posterforge weights export NAME
--format onnx``): a standard ONNX file, fp32, that ONNX Runtime, OpenVINO, TensorRT and the
browsers' runtimes read, with our metadata in its ``metadata_props``.

- A translator's graph is its built module: ``image`` ``(B, 3, H, W)`` RGB floats in ``[0, 1]``
  to ``translated`` of the same shape. H and W are dynamic axes unless ``--size WxH`` fixes
  them; either way each side must be a multiple of the model's ``size_multiple`` (the engine
  pads to it, the file does not).
- A generator's graph is its ``sample(z, conditions)``: ``z`` ``(B, z_dim)`` standard normal
  noise (posterforge draws poster ``i`` of seed ``s`` from ``numpy.random.default_rng((s, i))``)
  and, for a conditional model, ``conditions`` ``(B, C)``, the rows of ``posterforge.conditions``
  (one per label name), to ``image`` ``(B, 3, H, W)`` in ``[0, 1]``.
- The batch axis is always dynamic.

Exported with torch's TorchScript exporter (``dynamo=False``: it traces every first-party
family as it is and needs no onnxscript), held in memory, run by ONNX Runtime on a fixed probe
(seeded inputs, other sizes and batch than the trace) against torch, and written atomically only
when the largest difference is within :data:`TOLERANCE`. A family whose class declares
``exportable = False`` is refused in one line.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError
from posterforge.records import Kind

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from posterforge.catalog import ResolvedModel
    from posterforge.context import Context
    from posterforge.jobs.weights import WeightsExportJob

# Largest |onnx - torch| on the [0, 1] scale that passes: a quarter of a grey level. fp32 runtimes
# differ by summation order only (measured about 2e-6 for the CycleGAN and the genre cGAN).
TOLERANCE = 1e-3
OPSET = 17
TRACE_SIDE = 64  # a translator traces at about 64x64 (any size traces the same graph)
FORMAT = 1  # of our metadata keys


class NotExportable(PosterforgeError):
    """The model's family declares ``exportable = False``."""


def unavailable() -> str | None:
    """Why an ONNX export cannot run here (one line), or None."""
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            return (
                f"ONNX export needs the {package} package, which is not installed: "
                "pip install 'posterforge[onnx]' (make install brings it)"
            )
        except Exception as e:  # a broken install: a missing shared library, say
            return f"ONNX export: {package} failed to load: {_first_line(e)}"
    return None


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the file, the model, and how the file matched torch."""

    path: Path
    name: str
    kind: str
    arch: str
    runtime: str  # "onnxruntime 1.30.0": what ran the check
    max_abs_diff: float
    probes: tuple[tuple[int, ...], ...]  # the first input's shape of each probe
    metadata: dict[str, str] = field(repr=False)

    def summary(self) -> str:
        shapes = ", ".join("x".join(map(str, p)) for p in self.probes)
        return (
            f"exported {self.name} ({self.arch} {self.kind}, {self.metadata['posterforge.size']}) "
            f"to {self.path}; {self.runtime} matches torch within {self.max_abs_diff:.1e} "
            f"(max abs diff, on {shapes})"
        )


@dataclass
class _Graph:
    """What to trace and how to check it: the module, a traced example, the names and dynamic
    axes, the probes (inputs unlike the example), and the metadata that describes it."""

    module: torch.nn.Module
    example: tuple[torch.Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    probes: list[tuple[torch.Tensor, ...]]
    about: dict[str, str]


def export_onnx(job: WeightsExportJob, ctx: Context | None = None) -> Exported:
    """Resolve ``job.model``, export it, check it against torch, write ``job.out``."""
    from posterforge.catalog import resolve_any
    from posterforge.context import default_context

    ctx = ctx or default_context()
    model = resolve_any(job.model, ctx.host, ctx.store)
    if not getattr(model.cls, "exportable", True):
        raise NotExportable(
            f"{job.model}: model family {model.cls.name!r} is not exportable (its class declares "
            "exportable = False): it has no ONNX export and runs on torch only"
        )
    if (why := unavailable()) is not None:
        raise PosterforgeError(why)
    module = model.build().float().eval().requires_grad_(False)
    if model.kind == Kind.TRANSLATOR:
        graph = _translator_graph(model, module, job.frame)
    else:
        graph = _generator_graph(model, module, job)
    proto = _trace(graph, job.model)
    diff, runtime = _check(proto, graph, job)
    meta = _metadata(model, graph, job, diff, runtime)
    _write(proto, meta, job.out)
    return Exported(
        job.out, model.name, str(model.kind), model.cls.name, runtime, diff,
        tuple(tuple(p[0].shape) for p in graph.probes), meta,
    )  # fmt: skip


def _translator_graph(
    model: ResolvedModel, module: torch.nn.Module, frame: tuple[int, int] | None
) -> _Graph:
    import torch

    from posterforge.engine import padded_size

    multiple, low = int(model.cls.multiple), int(model.cls.min_size)
    gen = torch.Generator().manual_seed(0)  # the probe: the same on every run

    def rand(b: int, h: int, w: int) -> torch.Tensor:
        return torch.rand((b, 3, h, w), generator=gen)

    axes = {0: "batch"}
    if frame is None:
        side = padded_size(TRACE_SIDE, TRACE_SIDE, multiple, low)[0]
        example = rand(1, side, side)
        # two sizes unlike the trace's, one not square, one with a batch of 2
        probes = [rand(2, *padded_size(48, 80, multiple, low)),
                  rand(1, *padded_size(72, 40, multiple, low))]  # fmt: skip
        axes |= {2: "height", 3: "width"}
        size = "dynamic"
    else:
        w, h = frame
        if (h, w) != padded_size(h, w, multiple, low):
            ph, pw = padded_size(h, w, multiple, low)
            raise PosterforgeError(
                f"invalid size '{w}x{h}': {model.cls.name} takes sides that are multiples of "
                f"{multiple}, at least {low} (e.g. {pw}x{ph})"
            )
        example, probes, size = rand(1, h, w), [rand(2, h, w)], f"{w}x{h}"
    shape = ["batch", 3, "height" if frame is None else h, "width" if frame is None else w]
    image = {"name": "image", "shape": shape, "dtype": "float32", "layout": "NCHW",
             "colour": "RGB", "range": [0, 1]}  # fmt: skip
    about = {
        "posterforge.inputs": json.dumps([image]),
        "posterforge.outputs": json.dumps([dict(image, name="translated")]),
        "posterforge.size": size,
        "posterforge.size_multiple": str(multiple),
        "posterforge.min_size": str(low),
    }
    return _Graph(module, (example,), ["image"], ["translated"],
                  {"image": axes, "translated": axes}, [(p,) for p in probes], about)  # fmt: skip


class _Sample:
    """A generator's ``sample(z, conditions)`` as a module's forward (made lazily: torch)."""

    @staticmethod
    def wrap(module: torch.nn.Module, conditional: bool) -> torch.nn.Module:
        import torch

        class Sample(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.generator = module

            def forward(self, z: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
                return self.generator.sample(z, conditions[0] if conditional else None)

        # eval: the exporter puts a module back in the mode it found it in, children included
        return Sample().eval()


def _generator_graph(model: ResolvedModel, module: Any, job: WeightsExportJob) -> _Graph:
    import torch

    from posterforge.sampling import noise

    w, h = (int(s) for s in module.image_size)
    if job.frame is not None:
        raise PosterforgeError(
            f"--size is for translators: generator {job.model} makes {w}x{h} images, its own size"
        )
    z_dim, names = int(module.z_dim), module.label_names
    rows = _condition_rows(module, names)
    z_in = {"name": "z", "shape": ["batch", z_dim], "dtype": "float32",
            "meaning": "standard normal noise; posterforge draws poster i of seed s from "
                       "numpy.random.default_rng((s, i)).standard_normal(z_dim)"}  # fmt: skip
    inputs, described = ["z"], [z_in]
    example: tuple[torch.Tensor, ...] = (noise([0], z_dim, seed=1),)
    probe: tuple[torch.Tensor, ...] = (noise([0, 1, 2], z_dim, seed=0),)
    about = {"posterforge.z_dim": str(z_dim), "posterforge.label_count": "0"}
    if names is not None:
        c_dim = len(next(iter(rows.values()))) if rows else len(names)
        table = list(rows.values()) or [[0.0] * c_dim]
        picked = [table[i % len(table)] for i in range(3)]  # a probe row per label, in turn
        inputs.append("conditions")
        described.append({"name": "conditions", "shape": ["batch", c_dim], "dtype": "float32",
                          "meaning": "one row of posterforge.conditions per image"})  # fmt: skip
        example += (torch.tensor([table[0]], dtype=torch.float32),)
        probe += (torch.tensor(picked, dtype=torch.float32),)
        about |= {
            "posterforge.label_count": str(len(names)),
            "posterforge.labels": json.dumps(list(names)),
            "posterforge.conditions": json.dumps(rows),
        }
    image = {"name": "image", "shape": ["batch", 3, h, w], "dtype": "float32", "layout": "NCHW",
             "colour": "RGB", "range": [0, 1]}  # fmt: skip
    about |= {
        "posterforge.inputs": json.dumps(described),
        "posterforge.outputs": json.dumps([image]),
        "posterforge.size": f"{w}x{h}",
    }
    axes = {name: {0: "batch"} for name in [*inputs, "image"]}
    return _Graph(_Sample.wrap(module, names is not None), example, inputs, ["image"], axes,
                  [probe], about)  # fmt: skip


def _condition_rows(module: Any, names: Any) -> dict[str, list[float]]:
    """Each label's condition row, as the model makes it (a label it never learnt, which it
    refuses, is left out)."""
    rows: dict[str, list[float]] = {}
    for name in names or ():
        try:
            rows[name] = [float(v) for v in module.conditions(name).reshape(-1).tolist()]
        except PosterforgeError:
            continue
    return rows


def _trace(graph: _Graph, name: str) -> Any:
    """The graph as an ONNX ModelProto (checked by onnx's checker)."""
    import onnx
    import torch

    buffer = io.BytesIO()
    try:  # the tracer's warnings are about tracing, not for a user of the file
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph.module, graph.example, buffer, dynamo=False, opset_version=OPSET,
                input_names=graph.inputs, output_names=graph.outputs,
                dynamic_axes=graph.dynamic_axes, do_constant_folding=True,
            )  # fmt: skip
        proto = onnx.load_from_string(buffer.getvalue())
        onnx.checker.check_model(proto)
    except Exception as e:
        raise PosterforgeError(f"cannot export {name} to ONNX: {_first_line(e)}") from None
    return proto


def _check(proto: Any, graph: _Graph, job: WeightsExportJob) -> tuple[float, str]:
    """The largest |ONNX Runtime - torch| over the probes, and the runtime's name; one line
    (nothing written) beyond :data:`TOLERANCE`."""
    import numpy as np
    import onnxruntime as ort
    import torch

    runtime = f"onnxruntime {ort.__version__}"
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # no more threads than torch has
    options.log_severity_level = 3  # its warnings (unused initialisers, ...) are not the user's
    try:
        session = ort.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:
        raise PosterforgeError(f"{job.out}: not written: {runtime} cannot load the export: "
                               f"{_first_line(e)}") from None  # fmt: skip
    worst = 0.0
    for probe in graph.probes:
        with torch.inference_mode():
            want = graph.module(*probe).float().numpy()
        feed = {name: t.numpy() for name, t in zip(graph.inputs, probe, strict=True)}
        try:
            got = session.run(None, feed)[0]
        except Exception as e:
            raise PosterforgeError(f"{job.out}: not written: {runtime} fails on input "
                                   f"{_shape(probe[0])}: {_first_line(e)}") from None  # fmt: skip
        if got.shape != want.shape:
            raise PosterforgeError(
                f"{job.out}: not written: {runtime} returns {_shape(got)} for input "
                f"{_shape(probe[0])}, torch {_shape(want)}"
            )
        diff = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
        if not diff <= TOLERANCE:  # NaN fails too
            raise PosterforgeError(
                f"{job.out}: not written: {runtime} differs from torch by {diff:.2g} (max abs, "
                f"over {TOLERANCE:g}) on input {_shape(probe[0])}"
            )
        worst = max(worst, diff)
    return worst, runtime


def _metadata(
    model: ResolvedModel, graph: _Graph, job: WeightsExportJob, diff: float, runtime: str
) -> dict[str, str]:
    from posterforge.version import __version__

    header = model.header or {}
    check = {"runtime": runtime, "max_abs_diff": diff, "tolerance": TOLERANCE,
             "probes": [list(p[0].shape) for p in graph.probes]}  # fmt: skip
    return {
        "posterforge.format": str(FORMAT),
        "posterforge.version": __version__,
        "posterforge.model": model.name,
        "posterforge.kind": str(model.kind),
        "posterforge.arch": model.cls.name,
        "posterforge.sha256": model.sha256 or "",
        "posterforge.licence": str(header.get("licence", "")),
        "posterforge.config": json.dumps(header.get("config", {}), sort_keys=True),
        **graph.about,
        "posterforge.dynamic_axes": json.dumps(graph.dynamic_axes),
        "posterforge.check": json.dumps(check),
    }


def _write(proto: Any, meta: dict[str, str], out: Path) -> None:
    import onnx

    from posterforge.atomic import atomic_write

    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = f"posterforge {meta['posterforge.model']} ({meta['posterforge.arch']})"
    data = proto.SerializeToString()
    try:
        with atomic_write(out) as f:
            f.write(data)
    except OSError as e:
        from posterforge.atomic import os_error_line

        raise PosterforgeError(os_error_line(e)) from None


def _shape(x: Any) -> str:
    return "x".join(map(str, tuple(x.shape)))


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]
