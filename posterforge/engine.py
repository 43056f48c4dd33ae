"""The one inference runner: translators (uint8 images in and out) and generators (noise and
conditions in, images out), on any device.

The engine owns everything between the files and the network: the move to the device (pinned,
non-blocking on CUDA), uint8 <-> float, reflection padding to a translator's size multiple and
the crop back, memory layout, the model's own ``optimize_for``, autocast precision, and when to
compile. ``translate`` calls :meth:`Engine.forward`, ``generate`` calls :meth:`Engine.sample`.

Compilation policy (``compile="auto"``): a shape runs eagerly until it has cost
``compile_after_s`` seconds of compute; then, if it is small enough and the images still to come
would take ``compile_payoff_s`` more seconds, it is compiled (``torch.compile`` with freezing; the
inductor cache lives in the posterforge home, so later runs compile from cache). Short jobs never
pay for compilation; long jobs amortise it. ``"on"`` compiles at once, ``"off"`` never.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from posterforge.errors import PosterforgeError

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPILE_MODES = ("auto", "on", "off")


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


def pad_to_multiple(
    x: torch.Tensor, multiple: int, min_size: int = 1
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B, C, H, W)`` on the bottom/right up to multiples of ``multiple`` (and at least
    ``min_size``).

    Reflection keeps the border statistics natural; inputs too small to reflect (pad >= size)
    are replicated instead. Returns the padded tensor and the original (H, W) to crop back to.
    """
    h, w = x.shape[-2:]
    th = max(h + (-h % multiple), min_size + (-min_size % multiple))
    tw = max(w + (-w % multiple), min_size + (-min_size % multiple))
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def compile_cache_dir() -> str:
    from posterforge.store import home

    return str(home() / "compile-cache")


@dataclass
class _ShapeState:
    eager_s: float = 0.0
    eager_images: int = 0
    compiled: bool = False


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise PosterforgeError(f"invalid precision {precision!r}: use fp32, fp16 or bf16")


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
    precision: str = "fp32"
    compile: str = "auto"
    compile_after_s: float = 20.0
    # ... and only if the images still to come would take this long eagerly (compiling costs
    # 10-50 s on a CPU and saves 10-30%, so it pays only on long runs).
    compile_payoff_s: float = 120.0
    remaining: int | None = None  # images not yet run, when the caller knows (the pipeline does)
    # Large frames compile slowly (minutes on a CPU) and gain little: "auto" leaves them eager.
    compile_max_pixels: int = 512 * 512
    channels_last: bool | None = None
    # what runs, for the record of outputs: architecture and weights' sha256 (see outputs.py)
    model_id: str = ""
    _shapes: dict[tuple[int, ...], _ShapeState] = field(default_factory=dict, init=False)
    _compiled: dict[str, Callable[..., torch.Tensor]] = field(default_factory=dict, init=False)
    _compile_failed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.compile not in COMPILE_MODES:
            raise PosterforgeError(f"invalid compile mode {self.compile!r}: use auto, on or off")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes per bucket: pick the fastest conv
        if self.channels_last is None:
            # NHWC is what tensor cores want; on the CPU oneDNN measured no faster for our nets.
            self.channels_last = self.device.type == "cuda"
        self.module = self.module.to(self.device).eval().requires_grad_(False)
        if hasattr(self.module, "optimize_for"):  # a model's own device-specific variant
            self.module = self.module.optimize_for(self.device, self.autocast_dtype)
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
        return self._run("forward", self.module, padded)[..., :h, :w]

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
        return self._run("sample", self.module.sample, z, conditions).float()

    def _run(self, entry: str, eager: Callable[..., torch.Tensor], *args: torch.Tensor | None):
        key = (entry, *(tuple(a.shape) for a in args if a is not None))
        fn = self._pick(key, entry, eager, args)
        start = time.perf_counter()
        with torch.inference_mode(), self._autocast():
            y = fn(*args)
        if fn is eager:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            state = self._shapes[key]
            state.eager_s += time.perf_counter() - start
            state.eager_images += args[0].shape[0]  # type: ignore[union-attr]
        return y

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.to_uint8(self.forward(self.to_device(batch)))

    def _autocast(self) -> torch.autocast:
        dtype = self.autocast_dtype
        return torch.autocast(
            self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None
        )

    # -- compilation policy -----------------------------------------------------------------------
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
        if self.compile == "on" or self._worth_compiling(args[0].shape, state):  # type: ignore[union-attr]
            return self._compile_for(entry, eager, args, state)
        return eager

    def _worth_compiling(self, shape: tuple[int, ...], state: _ShapeState) -> bool:
        pixels = shape[-1] * shape[-2] if len(shape) == 4 else 0
        if state.eager_s < self.compile_after_s or pixels > self.compile_max_pixels:
            return False
        if self.remaining is None:
            return True
        per_image = state.eager_s / max(state.eager_images, 1)
        return self.remaining * per_image >= self.compile_payoff_s

    def _compile_for(
        self,
        entry: str,
        eager: Callable[..., torch.Tensor],
        args: tuple[torch.Tensor | None, ...],
        state: _ShapeState,
    ) -> Callable[..., torch.Tensor]:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", compile_cache_dir())
        # A CPU-only machine gets "No CUDA runtime is found" from the C++ builder: noise here.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        if entry not in self._compiled:
            self._compiled[entry] = torch.compile(
                eager, dynamic=False, options={"freezing": True}
            )
        try:
            # Compile now, on these shapes, so that a failure (no C compiler, say) falls back here.
            with torch.inference_mode(), self._autocast():
                probes = [None if a is None else torch.zeros_like(a) for a in args]
                self._compiled[entry](*probes)
        except Exception as e:  # compilation is an optimisation: never fail the job for it
            log.warning("compilation failed, staying eager: %s", str(e).splitlines()[0][:200])
            self._compile_failed = True
            return eager
        state.compiled = True
        return self._compiled[entry]
