"""Our weight format: one ``.safetensors`` file whose metadata holds the JSON config needed to
rebuild the network, plus the safe import of foreign checkpoints into it.

The metadata key ``posterforge`` holds ``{"format": 1, "kind", "arch", "config", "labels",
"licence", "provenance"}``. A file alone is enough to run: the ``arch`` names the registered class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import atomic_write
from posterforge.errors import WeightsError

if TYPE_CHECKING:
    import torch

METADATA_KEY = "posterforge"
FORMAT_VERSION = 1


@dataclass
class Weights:
    """A loaded weight file: the tensors and the header that says how to rebuild the network."""

    header: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    path: Path | None = None

    @property
    def arch(self) -> str:
        return self.header["arch"]

    @property
    def config(self) -> dict[str, Any]:
        return self.header.get("config", {})

    @property
    def labels(self) -> list[str]:
        return self.header.get("labels", [])


def make_header(kind: str, arch: str, config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The metadata we store; ``extra`` carries labels, licence, provenance and the like."""
    if kind not in ("translator", "generator"):
        raise ValueError(f"kind must be 'translator' or 'generator', not {kind!r}")
    return {"format": FORMAT_VERSION, "kind": kind, "arch": arch, "config": dict(config), **extra}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(path: Path, tensors: Mapping[str, torch.Tensor], header: Mapping[str, Any]) -> str:
    """Write ``tensors`` and ``header`` atomically to ``path``; return the file's sha256."""
    from safetensors.torch import save

    # safetensors wants contiguous tensors that do not share memory.
    flat = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    data = save(flat, metadata={METADATA_KEY: json.dumps(dict(header), sort_keys=True)})
    with atomic_write(path) as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def read_header(path: Path) -> dict[str, Any]:
    """Read only the header of one of our weight files (no tensors, no torch)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise WeightsError(f"{path}: weight file not found") from None
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise WeightsError(f"{path}: not a safetensors weight file ({e})") from None
    if METADATA_KEY not in meta:
        raise WeightsError(
            f"{path}: safetensors file without a posterforge header; "
            "import it with `posterforge weights import`"
        )
    try:
        header = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: corrupt posterforge header ({e})") from None
    if header.get("format") != FORMAT_VERSION or "arch" not in header:
        raise WeightsError(f"{path}: unsupported weight format {header.get('format')!r}")
    return header


def load_weights(path: Path) -> Weights:
    """Load one of our weight files onto the CPU."""
    from safetensors.torch import load_file

    header = read_header(path)
    return Weights(header=header, tensors=load_file(str(path), device="cpu"), path=Path(path))


# --- foreign checkpoints -------------------------------------------------------------------------

StateDict = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class Importer:
    """Converts one foreign state-dict layout into our tensors and header (see hookspecs)."""

    name: str
    description: str
    detect: Callable[[StateDict], bool]
    convert: Callable[[StateDict], tuple[StateDict, dict[str, Any]]]


NATIVE = "native"  # a WeightSource whose file is in our format already (no importer needed)


@dataclass(frozen=True)
class WeightSource:
    """Weights that a plugin can install into the store from a file already on disk: a foreign
    checkpoint converted by ``importer``, or a file in our own format (``importer=NATIVE``)."""

    name: str
    description: str
    locate: Callable[[], Path | None]
    importer: str
    kind: str = "translator"
    sha256: str | None = None
    licence: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    how_to_get: str = ""


def load_foreign_state_dict(path: Path) -> StateDict:
    """Load a ``.pth``/``.pt`` checkpoint without executing code from it.

    ``torch.load(weights_only=True)`` refuses any pickle that would build Python objects other than
    tensors and plain containers; we turn that refusal into a one-line error.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe pickle"
        raise WeightsError(
            f"{path}: refused: the checkpoint holds Python objects other than tensors ({first})"
        ) from None
    except Exception as e:
        raise WeightsError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    # Training scripts often wrap the state dict; unwrap the common single-key containers.
    for key in ("state_dict", "model", "netG", "generator"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def convert_foreign(
    path: Path, importers: Mapping[str, Importer], fmt: str = "auto"
) -> tuple[StateDict, dict[str, Any], str]:
    """Load ``path`` safely and convert it with the named importer, or the one that detects it.

    Returns ``(tensors, header_fields, importer_name)``.
    """
    state = load_foreign_state_dict(path)
    if fmt != "auto":
        if fmt not in importers:
            from posterforge.errors import UnknownNameError

            raise UnknownNameError("checkpoint format", fmt, importers.keys())
        chosen = [importers[fmt]]
    else:
        chosen = [imp for imp in importers.values() if imp.detect(state)]
        if not chosen:
            raise WeightsError(
                f"{path}: no importer recognises these tensors "
                f"(known formats: {', '.join(sorted(importers.keys())) or 'none'})"
            )
        if len(chosen) > 1:
            names = ", ".join(i.name for i in chosen)
            raise WeightsError(f"{path}: ambiguous checkpoint format ({names}); pass --format")
    imp = chosen[0]
    try:
        tensors, header = imp.convert(state)
    except (KeyError, ValueError) as e:
        raise WeightsError(f"{path}: does not match the {imp.name!r} layout ({e})") from None
    return tensors, header, imp.name
