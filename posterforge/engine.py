"""The one inference runner: translators (uint8 images in and out) and generators (noise and
conditions in, images out), on any device.

The engine owns everything between the files and the network: the move to the device (pinned,
non-blocking on CUDA), uint8 <-> float, reflection padding to a translator's size multiple and
the crop back, memory layout, the model's own ``optimize_for``, autocast precision, and when to
compile. ``translate`` calls :meth:`Engine.forward`, ``generate`` calls :meth:`Engine.sample`.

Compilation policy (``compile="auto"``): whether a shape is compiled is decided before it first
runs, from the job and the compile cache only, never from timing, so a killed and resumed run
makes the same decision and writes the same bytes (compiled and eager results can differ by one
grey level). The caller tells the engine how many images of each shape the whole job holds
(:meth:`Engine.expect`, finished ones included); a shape is compiled when those images hold
enough pixels to pay for compiling: :data:`COLD_COMPILE_WORK` when this model and shape were never
compiled here, :data:`WARM_COMPILE_WORK` when they were (inductor's cache, in the posterforge
home, then makes compiling much cheaper; ``posterforge warmup`` fills it ahead of time). Frames
over ``compile_max_pixels`` stay eager. ``"on"`` compiles every shape at once, ``"off"`` never.

Backend (``backend``: ``torch``, ``openvino`` or ``auto``): which path runs each shape, torch or
an OpenVINO compiled model, is :class:`posterforge.backends.choice.Choice`'s to decide; for
``auto`` from a calibration cached in the home, so a resumed run takes the same path again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from posterforge.backends import BACKENDS, OPENVINO, TORCH, BackendFailed
from posterforge.compiling import compile_cache_dir, compile_cause, compiling
from posterforge.errors import PosterforgeError

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPILE_MODES = ("auto", "on", "off")

# Pixels a job must push through one shape before "auto" compiles it. Measured on the 2-core CPU
# machines with the vintage CycleGAN at 256x256: compiling costs 30-75 s cold and 15-30 s from
# inductor's cache, and saves 10-30% of an eager frame's ~0.4 s; so about a thousand such frames
# pay for a cold compile and a few hundred for a warm one.
COLD_COMPILE_WORK = 1000 * 256 * 256
WARM_COMPILE_WORK = 300 * 256 * 256


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise PosterforgeError(
            f"invalid device {spec!r}: use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise PosterforgeError(f"device {spec!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise PosterforgeError(
                f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise PosterforgeError("device 'mps' requested but MPS is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise PosterforgeError(f"unsupported device {spec!r}")
    return device


def padded_size(h: int, w: int, multiple: int, min_size: int = 1) -> tuple[int, int]:
    """(H, W) after :func:`pad_to_multiple`."""
    th = max(h + (-h % multiple), min_size + (-min_size % multiple))
    tw = max(w + (-w % multiple), min_size + (-min_size % multiple))
    return th, tw


def pad_to_multiple(
    x: torch.Tensor, multiple: int, min_size: int = 1
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B, C, H, W)`` on the bottom/right up to multiples of ``multiple`` (and at least
    ``min_size``).

    Reflection keeps the border statistics natural; inputs too small to reflect (pad >= size)
    are replicated instead. Returns the padded tensor and the original (H, W) to crop back to.
    """
    h, w = x.shape[-2:]
    th, tw = padded_size(h, w, multiple, min_size)
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


@dataclass
class _ShapeState:
    decided: bool = False  # compile or not, decided on the shape's first call
    compiled: bool = False


def check_precision(precision: str) -> None:
    if precision != "auto" and precision not in PRECISIONS:
        raise PosterforgeError(f"invalid precision {precision!r}: use auto, fp32, fp16 or bf16")


def slow_bf16_note(device: torch.device, precision: str) -> str | None:
    """A note when bf16 on this CPU will be slower than fp32, or None: without native bf16
    (AVX512-BF16 or AMX) oneDNN falls back to reference kernels, measured 3-10x slower than
    fp32 for CycleGAN training on this project's AVX2 machines (bench/train_quality.py)."""
    if device.type != "cpu" or precision != "bf16":
        return None
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None  # cannot tell: say nothing
    if native:
        return None
    return (
        "this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 runs slower than fp32 here, "
        "3-10x for training; fp32 is the faster choice"
    )


@dataclass
class Engine:
    """Wraps a built module for batched inference.

    A translator ``module`` maps ``(B, 3, H, W)`` floats in [0, 1] to the same; H and W must be
    multiples of ``multiple`` and at least ``min_size``. Call the engine with a ``(B, H, W, 3)``
    uint8 CPU tensor; it returns the same. A generator ``module`` has ``sample(z, conditions)``
    (see :class:`posterforge.models.BuiltGenerator`), run through :meth:`sample`.
    """

    module: torch.nn.Module
    device: torch.device
    multiple: int = 1
    min_size: int = 1
    precision: str = "fp32"  # "auto" is resolved on construction (posterforge.backends.precision)
    compile: str = "auto"
    # Large frames compile slowly (minutes on a CPU) and gain little: "auto" leaves them eager.
    compile_max_pixels: int = 512 * 512
    channels_last: bool | None = None
    # what runs, for the record of outputs: architecture and weights' sha256 (see outputs.py)
    model_id: str = ""
    backend: str = "torch"  # "torch", "openvino" or "auto" (see posterforge.backends)
    arch: str = ""  # architecture and config, what speed depends on: the calibration's key
    exportable: bool = True  # the model family's word on whether OpenVINO may take it
    stabilize: float | None = None  # the strength of a stabilised module (posterforge.stabilize)
    _shapes: dict[tuple, _ShapeState] = field(default_factory=dict, init=False)
    _expected: dict[tuple, int] = field(default_factory=dict, init=False)
    # what compiling cost this run: (shape, seconds, whether this model and shape were compiled
    # here before)
    compiled_shapes: list[tuple[tuple[int, ...], float, bool]] = field(
        default_factory=list, init=False
    )
    _compiled: dict[str, Callable[..., torch.Tensor]] = field(default_factory=dict, init=False)
    _compile_failed: bool = field(default=False, init=False)
    compile_error: str | None = field(default=None, init=False)  # why compiling failed, in words
    precision_how: str = field(default="asked", init=False)  # for the device line

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.compile not in COMPILE_MODES:
            raise PosterforgeError(f"invalid compile mode {self.compile!r}: use auto, on or off")
        if self.channels_last is None:
            # NHWC is what tensor cores want; on the CPU oneDNN measured no faster for our nets.
            self.channels_last = self.device.type == "cuda"
        if self.backend not in BACKENDS:
            raise PosterforgeError(f"invalid backend {self.backend!r}: use auto, torch or openvino")
        self.module = self.module.to(self.device).eval().requires_grad_(False)
        if self.precision == "auto":  # before optimize_for: its variant depends on the dtype
            from posterforge.backends.precision import resolve

            self.precision, self.precision_how = resolve(self)
        elif (note := slow_bf16_note(self.device, self.precision)) is not None:
            log.warning("posterforge: note: %s", note)
        self.plain = self.module  # as built: what OpenVINO converts
        if hasattr(self.module, "optimize_for"):  # a model's own device-specific variant
            self.module = self.module.optimize_for(self.device, self.autocast_dtype)
        if self.backend == TORCH:
            self.plain = self.module  # never needed: no second copy held
        from posterforge.backends.choice import Choice

        self.choice = Choice(self)
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return PRECISIONS[self.precision]

    # -- compute ----------------------------------------------------------------------------------
    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, H, W, 3)`` on the CPU -> float ``(B, 3, H, W)`` in [0, 1] on the device."""
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        else:
            batch = batch.to(self.device)
        x = batch.permute(0, 3, 1, 2).float().div_(255)
        if self.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    @staticmethod
    def to_uint8(y: torch.Tensor) -> torch.Tensor:
        """float ``(B, 3, H, W)`` in [0, 1] -> uint8 ``(B, H, W, 3)`` on the CPU (rounded)."""
        with torch.inference_mode():  # in place after the first op, also on inference tensors
            # clamp out of place: a model may return a view (an expanded grey channel, say)
            out = y.float().clamp(0, 1).mul_(255).round_().to(torch.uint8)
            return out.permute(0, 2, 3, 1).contiguous().cpu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float in, float out, on the device: pad, run (eager or compiled), crop."""
        padded, (h, w) = pad_to_multiple(x, self.multiple, self.min_size)
        return self._run("forward", padded)[..., :h, :w]

    def sample(
        self, z: torch.Tensor, conditions: torch.Tensor | None, **kw: object
    ) -> torch.Tensor:
        """A generator's ``sample(z, conditions, **kw)`` on the device: float ``(B, 3, H, W)``
        in [0, 1] (fp32 whatever the autocast precision)."""
        z = z.to(self.device)
        if conditions is not None:
            conditions = conditions.to(self.device)
        if kw:  # model-specific arguments (truncation): eager, the compile cache is per shape
            with torch.inference_mode(), self._autocast():
                return self.module.sample(z, conditions, **kw).float()
        return self._run("sample", z, conditions).float()

    def call(self, entry: str, *args: torch.Tensor | None) -> torch.Tensor:
        """The module's method ``entry`` (an optional capability such as ``render``) on the
        device, eager, under inference mode and the autocast precision; float out."""
        moved = [None if a is None else a.to(self.device) for a in args]
        with torch.inference_mode(), self._autocast():
            return getattr(self.module, entry)(*moved).float()

    def _run(self, entry: str, *args: torch.Tensor | None) -> torch.Tensor:
        key = _key(entry, *(None if a is None else tuple(a.shape) for a in args))
        path = self.choice.path(key, args)
        if path == OPENVINO:
            try:
                with torch.inference_mode():
                    return self.choice.function(path, entry)(*args)
            except BackendFailed as e:  # before any output of this key: torch from here on
                self.choice.failed(key, e)
                path = TORCH
        name = entry if path == TORCH else f"{entry}/{path}"  # one compiled function per path
        fn = self._pick(key, name, self.eager(path, entry), args)
        with torch.inference_mode(), self._autocast(), self._cudnn_benchmark():
            return fn(*args)

    def eager(self, path: str, entry: str) -> Callable[..., torch.Tensor]:
        """The torch function of ``entry`` on a torch path (with or without the variant)."""
        module = self.module if path == TORCH else self.plain
        return module if entry == "forward" else module.sample

    # -- backends ---------------------------------------------------------------------------------
    def decide_paths(self) -> None:
        """Decide the path of every shape :meth:`expect` was told of, calibrating where this
        machine has not yet: before any output, so the outputs record can name it."""
        self.choice.decide(list(self._expected), self._example)

    @property
    def example_side(self) -> int:
        """A square frame side this translator takes, about 64 (what OpenVINO traces with)."""
        return padded_size(64, 64, self.multiple, self.min_size)[0]

    def _example(self, key: tuple) -> tuple[torch.Tensor | None, ...]:
        gen = torch.Generator().manual_seed(0)  # calibration inputs: the same on every run
        if key[0] == "forward":
            return (torch.rand(key[1], generator=gen).to(self.device),)
        z = torch.randn(key[1], generator=gen).to(self.device)
        return z, None if key[2] is None else torch.zeros(key[2], device=self.device)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.to_uint8(self.forward(self.to_device(batch)))

    @contextmanager
    def _cudnn_benchmark(self) -> Iterator[None]:
        """cuDNN picks the fastest convolution for our fixed shapes (one per bucket), for the
        engine's own calls only: the process's setting is back as it was after each."""
        if self.device.type != "cuda":
            yield
            return
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = before

    def _autocast(self) -> torch.autocast:
        dtype = self.autocast_dtype
        return torch.autocast(
            self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None
        )

    # -- compilation policy -----------------------------------------------------------------------
    def expect(self, batch: int, hw: tuple[int, int], images: int) -> None:
        """Tell the engine that the whole job runs ``images`` translator inputs of ``hw`` (H, W,
        before padding) in batches of ``batch``; "auto" decides from this whether to compile."""
        h, w = padded_size(*hw, self.multiple, self.min_size)
        key = _key("forward", (batch, 3, h, w))
        self._expected[key] = self._expected.get(key, 0) + images

    def expect_samples(
        self, batch: int, z_dim: int, condition_dim: int | None, images: int
    ) -> None:
        """The same for a generator: ``images`` samples in batches of ``batch``."""
        c = None if condition_dim is None else (batch, condition_dim)
        key = _key("sample", (batch, z_dim), c)
        self._expected[key] = self._expected.get(key, 0) + images

    def compile_note(self) -> str | None:
        """One clause for a run's summary line: what compiling cost, or None if nothing was."""
        if not self.compiled_shapes:
            return None
        parts = [
            f"{'x'.join(map(str, shape))} in {secs:.1f} s{' (cached)' if warm else ''}"
            for shape, secs, warm in self.compiled_shapes
        ]
        return "compiled " + ", ".join(parts)

    def _pick(
        self,
        key: tuple,
        entry: str,
        eager: Callable[..., torch.Tensor],
        args: tuple[torch.Tensor | None, ...],
    ) -> Callable[..., torch.Tensor]:
        state = self._shapes.setdefault(key, _ShapeState())
        if self.compile == "off" or self._compile_failed or self.device.type == "mps":
            return eager
        if state.compiled:
            return self._compiled[entry]
        if state.decided:
            return eager
        state.decided = True
        if self.compile == "on" or self.worth_compiling(key):
            return self._compile_for(key, entry, eager, args, state)
        return eager

    def worth_compiling(self, key: tuple) -> bool:
        """The "auto" decision for one shape: a function of the job (what :meth:`expect` was
        told) and of whether this model and shape were compiled here before; never of timing."""
        images = self._expected.get(key, 0)
        pixels = _pixels(self, key)
        if images == 0 or pixels > self.compile_max_pixels:
            return False
        need = WARM_COMPILE_WORK if self._compiled_before(key) else COLD_COMPILE_WORK
        return images * pixels >= need

    def _marker(self, key: tuple) -> Path | None:
        """The file that records a compile of this model and shape (None for an unnamed model:
        nothing tells two of those apart)."""
        if not self.model_id:
            return None
        text = json.dumps(
            [self.model_id, repr(key), self.precision, self.device.type, torch.__version__]
        )
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        return Path(compile_cache_dir()) / "compiled" / f"{digest}.json"

    def _compiled_before(self, key: tuple) -> bool:
        marker = self._marker(key)
        return marker is not None and marker.is_file()

    def _compile_for(
        self,
        key: tuple,
        entry: str,
        eager: Callable[..., torch.Tensor],
        args: tuple[torch.Tensor | None, ...],
        state: _ShapeState,
    ) -> Callable[..., torch.Tensor]:
        warm = self._compiled_before(key)
        start = time.perf_counter()  # the cost of compiling, importing the compiler included
        if entry not in self._compiled:
            self._compiled[entry] = torch.compile(
                eager, dynamic=False, options={"freezing": True}
            )
        try:
            # Compile now, on these shapes, so that a failure (no C compiler, say) falls back here.
            # The probes match the arguments down to being inference tensors or not: any
            # difference fails dynamo's guards, and the real call would compile all over again.
            probes = [None if a is None else _zeros_like(a) for a in args]
            with compiling(), torch.inference_mode(), self._autocast(), self._cudnn_benchmark():
                self._compiled[entry](*probes)
        except Exception as e:  # compilation is an optimisation: never fail the job for it
            log.warning("compilation failed, staying eager: %s", str(e).splitlines()[0][:200])
            self._compile_failed = True
            self.compile_error = compile_cause(e)
            return eager
        secs = time.perf_counter() - start
        shape = next(a for a in args if a is not None).shape
        self.compiled_shapes.append((tuple(shape), secs, warm))
        if (marker := self._marker(key)) is not None and not warm:
            try:
                from posterforge.atomic import write_text_atomic

                marker.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(marker, json.dumps({"model": self.model_id, "seconds": secs}))
            except OSError:  # the record only speeds up later decisions
                pass
        state.compiled = True
        return self._compiled[entry]


def _zeros_like(a: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode(a.is_inference()):
        return torch.zeros_like(a)


def _key(entry: str, *shapes: tuple[int, ...] | None) -> tuple:
    return (entry, *shapes)


def _pixels(engine: Engine, key: tuple) -> int:
    """Output pixels per image of a run key (a translator's padded frame, a generator's size)."""
    if key[0] == "forward":
        h, w = key[1][-2:]
        return int(h) * int(w)
    w, h = engine.module.image_size
    return int(w) * int(h)
