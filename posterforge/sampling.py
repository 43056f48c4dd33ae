"""Sampling any generator family as tensors or images, with nothing touching the disk: a built
generator in its engine (:class:`LoadedGenerator`), the noise of each image index, batches.

Image ``i`` of a run with seed ``s`` always gets the same noise vector, whatever the batch size,
``-n`` or condition (numpy's seed sequence takes ``(seed, i)`` whole; torch's CPU generator would
keep 32 bits of a seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.catalog import ResolvedModel
from posterforge.context import Context, default_context
from posterforge.errors import PosterforgeError
from posterforge.jobs.generate import DEFAULT_MODEL
from posterforge.records import Kind

if TYPE_CHECKING:
    import torch

    from posterforge.engine import Engine
    from posterforge.models import BuiltGenerator
    from posterforge.store import Store


@dataclass
class LoadedGenerator:
    """A built generator in its engine: the generator boundary the core samples through."""

    engine: Engine
    name: str = ""

    @property
    def module(self) -> BuiltGenerator:
        return self.engine.module  # type: ignore[return-value]

    @property
    def z_dim(self) -> int:
        return int(self.module.z_dim)

    @property
    def image_size(self) -> tuple[int, int]:  # (W, H)
        w, h = self.module.image_size
        return int(w), int(h)

    @property
    def label_names(self) -> list[str] | None:
        names = self.module.label_names
        return None if names is None else list(names)

    @property
    def conditional(self) -> bool:
        return self.label_names is not None

    @property
    def truncation_in_model(self) -> bool:
        return getattr(self.module, "truncation", "resample") == "model"

    def caption(self, spec: str | None) -> str:
        """The canonical condition for file names and captions ("" when unconditional)."""
        if not self.conditional:
            if spec:
                raise PosterforgeError(
                    f"generator {self.name or '?'} is unconditional: leave out --genre"
                )
            return ""
        if spec is None:
            raise PosterforgeError(
                f"generator {self.name or '?'} is conditional: name what to generate with "
                f"--genre (one of {', '.join(self.label_names or [])})"
            )
        return self.module.caption(spec)

    def conditions(self, spec: str | None, n: int) -> torch.Tensor | None:
        """The condition rows for ``n`` images of ``spec`` (None when unconditional)."""
        if not self.conditional:
            return None
        return self.module.conditions(spec).reshape(1, -1).float().repeat(n, 1)

    def __call__(
        self, z: torch.Tensor, conditions: torch.Tensor | None, truncation: float | None = None
    ) -> torch.Tensor:
        """Float ``(B, 3, H, W)`` in ``[0, 1]`` on the device, from CPU ``z`` and conditions."""
        kw = {"truncation": truncation} if truncation is not None else {}
        return self.engine.sample(z, conditions, **kw)


def noise(indices: Sequence[int], z_dim: int, seed: int, truncation: float | None = None):
    """``(len(indices), z_dim)`` standard normal noise on the CPU, one row per poster index.

    Row ``i`` depends only on ``(seed, i)``. With ``truncation`` psi, entries outside
    ``[-psi, psi]`` are drawn again (the truncation trick of BigGAN): less variety, more typical
    posters."""
    return noise_at([(seed, i) for i in indices], z_dim, truncation)


def noise_at(addresses: Sequence[tuple[int, int]], z_dim: int, truncation: float | None = None):
    """The noise rows of posters addressed by ``(seed, index)`` (see :func:`noise`)."""
    import torch

    if truncation is not None and truncation <= 0:
        raise PosterforgeError(f"truncation must be positive, not {truncation}")
    rows = np.zeros((len(addresses), z_dim), dtype=np.float32)
    for row, (seed, i) in enumerate(addresses):
        # numpy's seed sequence takes (seed, index) whole; torch's CPU generator keeps 32 bits
        rng = np.random.default_rng((int(seed), int(i)))
        z = rng.standard_normal(z_dim)
        if truncation is not None:
            for _ in range(1000):  # P(|z| > psi) < 1 for any psi > 0: this ends
                out = np.abs(z) > truncation
                if not out.any():
                    break
                z[out] = rng.standard_normal(int(out.sum()))
            np.clip(z, -truncation, truncation, out=z)
        rows[row] = z
    return torch.from_numpy(rows)


def load_generator(
    model: str | ResolvedModel = DEFAULT_MODEL,
    *,
    device: str = "auto",
    precision: str = "fp32",
    compile: str = "auto",
    backend: str = "torch",
    ctx: Context | None = None,
    store: Store | None = None,
) -> LoadedGenerator:
    """Resolve a generator (a stored name, a plugin's weights or a ``.safetensors`` file; or a
    model resolved already), build it and put it in an engine on ``device``, ready to sample.
    ``store``: the weight store, when no ``ctx`` is given."""
    from posterforge.backends import architecture
    from posterforge.engine import Engine, check_precision, resolve_device

    check_precision(precision)
    if not isinstance(model, ResolvedModel):
        from posterforge.catalog import resolve_model

        ctx = ctx or default_context(store)
        model = resolve_model(model, Kind.GENERATOR, ctx.host, ctx.store)
    engine = Engine(
        model.build(),
        resolve_device(device),
        precision=precision,
        compile=compile,
        model_id=model.model_id,
        backend=backend,
        arch=architecture(model),
        exportable=getattr(model.cls, "exportable", True),
    )
    return LoadedGenerator(engine, model.name)


def batch_of(
    gen: LoadedGenerator,
    row: torch.Tensor | None,
    addresses: Sequence[tuple[int, int]],
    psi: float | None,
) -> torch.Tensor:
    """The images of posters ``addresses`` (``(seed, index)`` each) for the condition ``row``
    (``(1, C)``, parsed once; None when unconditional) on the device; truncation is the family's
    or noise redraws."""
    cond = None if row is None else row.repeat(len(addresses), 1)
    if gen.truncation_in_model:
        return gen(noise_at(addresses, gen.z_dim), cond, psi)
    return gen(noise_at(addresses, gen.z_dim, psi), cond)


def sample(
    gen: LoadedGenerator,
    condition: str | None,
    n: int,
    *,
    seed: int = 0,
    truncation: float | None = None,
    batch_size: int = 64,
    start: int = 0,
) -> torch.Tensor:
    """``n`` images of ``condition`` (None for an unconditional generator) as a float
    ``(n, 3, H, W)`` CPU tensor in ``[0, 1]``; image ``k`` has index ``start + k`` (see the module
    docstring). Nothing touches the disk."""
    import torch

    gen.caption(condition)  # refuses a condition the generator does not take, and vice versa
    if truncation is not None and truncation <= 0:
        raise PosterforgeError(f"truncation must be positive, not {truncation}")
    row = gen.conditions(condition, 1)
    out = [
        batch_of(gen, row, [(seed, k) for k in range(i, min(i + batch_size, start + n))],
                 truncation).cpu()
        for i in range(start, start + n, batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, 3, gen.image_size[1], gen.image_size[0])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float ``(B, 3, H, W)`` in ``[0, 1]`` to uint8 ``(B, H, W, 3)`` on the CPU."""
    from posterforge.engine import Engine

    return Engine.to_uint8(x)


def generate_images(
    model: str = DEFAULT_MODEL, condition: str | None = None, n: int = 8, **kw: Any
) -> list[Any]:
    """``n`` images of ``condition`` as PIL images (``kw``: seed, truncation, batch_size, device,
    precision).

    >>> posters = generate_images("posters-demo", "horror", 4, seed=1)  # doctest: +SKIP
    """
    from PIL import Image

    opts = {k: kw.pop(k) for k in ("device", "precision", "compile", "store") if k in kw}
    gen = load_generator(model, **opts)
    return [Image.fromarray(a.numpy()) for a in to_uint8(sample(gen, condition, n, **kw))]
