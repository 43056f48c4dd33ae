"""Our weight format: one ``.safetensors`` file whose metadata holds the JSON config needed to
rebuild the network, plus the safe import of foreign checkpoints into it.

The metadata key ``posterforge`` holds ``{"format": 1, "kind", "arch", "config", "labels",
"licence", "provenance"}``. A file alone is enough to run: the ``arch`` names the registered class.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.atomic import atomic_write
from posterforge.errors import WeightsError
from posterforge.netconfig import Allowed, check_values
from posterforge.records import Kind

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
    def kind(self) -> str:
        return self.header.get("kind", "")

    @property
    def config(self) -> dict[str, Any]:
        return self.header.get("config", {})

    @property
    def labels(self) -> list[str]:
        return self.header.get("labels", [])


def make_header(kind: str, arch: str, config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The metadata we store; ``extra`` carries labels, licence, provenance and the like."""
    if kind not in tuple(Kind):
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
    except (json.JSONDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise WeightsError(f"{path}: corrupt posterforge header ({reason})") from None
    problem = header_problem(header)
    if problem is not None:
        raise WeightsError(f"{path}: {problem}")
    return header


def header_problem(header: object) -> str | None:
    """What makes ``header`` unusable as our weight header (the types of the fields the core
    reads), or None. The family checks its own ``config`` (``check`` of its model class)."""
    if not isinstance(header, dict):
        return f"the posterforge header is a JSON {type(header).__name__}, not an object"
    if header.get("format") != FORMAT_VERSION:
        return f"unsupported weight format {header.get('format')!r}"
    if not isinstance(header.get("arch"), str) or not header["arch"]:
        return "the header's arch is not a name"
    if header.get("kind") not in tuple(Kind):
        return f"the header's kind {header.get('kind')!r} is not translator or generator"
    if not isinstance(header.get("config", {}), dict):
        return "the header's config is not an object"
    labels = header.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        return "the header's labels are not a list of names"
    if len(set(labels)) != len(labels):
        return "the header's labels repeat a name"
    return None


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in a safetensors file, read from its header alone."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as e:
        raise WeightsError(f"{path}: unreadable tensors ({e})") from None


def check_buildable(cls: Any, path: Path, header: dict[str, Any]) -> None:
    """Ask the model class whether this file can be it, from the header and the tensor shapes
    alone, before anything is built or allocated (a hostile or broken file is one line)."""
    shapes = tensor_shapes(path)
    if not shapes and getattr(cls, "needs_weights", True):
        raise WeightsError(f"{path}: holds no tensors")
    try:
        cls.check(header, shapes)
    except (ValueError, TypeError, KeyError) as e:
        raise WeightsError(f"{path}: not a usable {header['arch']} model: {e}") from None


def build_checked(cls: Any, path: Path, header: dict[str, Any] | None = None) -> Any:
    """``cls.build`` of the weights in ``path``, checked first (:func:`check_buildable`); an
    error while building is a :class:`WeightsError` naming the file. ``header``: the file's
    header when the caller has read it already (it is then not parsed again)."""
    if header is None:
        header = read_header(path)
    check_buildable(cls, path, header)
    weights = load_weights(path, header)
    try:
        return cls.build(weights)
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: cannot build {weights.arch}: {first}") from None


def load_weights(path: Path, header: dict[str, Any] | None = None) -> Weights:
    """Load one of our weight files onto the CPU (``header``: already read, not parsed again)."""
    from safetensors.torch import load_file

    if header is None:
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
    kind: str = Kind.TRANSLATOR
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
        # torch's message runs over many lines with terminal colour codes: name the object only
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None and "Unsupported operand" in str(e):  # no pickle at all: a JPEG, say
            raise WeightsError(
                f"{path}: not a PyTorch checkpoint (a .pth/.pt file saved by torch.save) nor a "
                ".safetensors file"
            ) from None
        what = f" ({found[1]})" if found else ""
        raise WeightsError(
            f"{path}: refused: the checkpoint holds Python objects other than tensors{what}; "
            "save the model's state_dict() instead of the model"
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


# --- helpers for a model class's ``check`` -------------------------------------------------------


def check_config(
    config: Mapping[str, Any],
    ints: Mapping[str, tuple[int, int]],
    *,
    floats: Mapping[str, tuple[float, float]] | None = None,
    bools: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
) -> None:
    """Raise ``ValueError`` for a config key that is unknown, missing (``required``), of the
    wrong type, or outside its ``(low, high)`` range. The first-party families declare these
    beside their config's fields instead (:class:`posterforge.netconfig.NetConfig`)."""
    allowed = {k: Allowed("number", *r) for k, r in (floats or {}).items()}
    allowed |= {k: Allowed("whole", *r) for k, r in ints.items()}
    allowed |= {k: Allowed("flag") for k in bools}
    check_values(config, allowed, required)


@contextmanager
def _no_init() -> Iterator[None]:
    """In-place fills (what ``torch.nn.init`` does) as no-ops, in this thread only, while a
    network is built on the meta device: there is nothing to fill, and their meta versions cost a
    second or more on first use (decompositions load). A torch function mode, not a patch of
    ``torch.nn.init``: other threads and the rest of the process see torch unchanged."""
    from torch.overrides import TorchFunctionMode

    class SkipFills(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if name.endswith("_") and not name.endswith("__"):
                # an in-place fill returns its tensor (``nn.init`` passes it as ``tensor=``)
                target = args[0] if args else kwargs.get("tensor")
                if target is not None:
                    return target
            return func(*args, **kwargs)

    with SkipFills():
        yield


def check_shapes(
    factory: Callable[[], Any], shapes: Mapping[str, tuple[int, ...]], *, dtype_free: bool = True
) -> None:
    """Build ``factory()`` on torch's meta device (no memory) and raise ``ValueError`` unless its
    state dict has exactly the names and shapes in ``shapes``."""
    import torch

    with _no_init(), torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in factory().state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    wrong = [k for k in expected if k in shapes and tuple(shapes[k]) != expected[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected tensors (e.g. {extra[0]})")
    if wrong:
        k = wrong[0]
        problems.append(f"{k} has shape {list(shapes[k])}, the config needs {list(expected[k])}")
    if problems:
        raise ValueError("the tensors do not match the config: " + "; ".join(problems))


def ship(
    src: Path, dest: Path, *, description: str, licence: str, provenance: Mapping[str, Any]
) -> Path:
    """Copy the weight file ``src`` to ``dest`` (a plugin's shipped weights) with a description,
    a licence and extra provenance in its header, and a ``.sha256`` sidecar beside it."""
    model = load_weights(Path(src))
    header = dict(model.header, description=description, licence=licence)
    header["provenance"] = {**header.get("provenance", {}), **provenance}
    digest = save_weights(Path(dest), model.tensors, header)
    with atomic_write(Path(dest).with_suffix(".sha256")) as f:
        f.write(f"{digest}  {Path(dest).name}\n".encode())
    return Path(dest)


def shipped_source(
    name: str, path: Path, *, kind: str, description: str, licence: str = "MIT"
) -> WeightSource:
    """The :class:`WeightSource` of weights in our format that a plugin ships in its package
    (``path``, with the ``.sha256`` sidecar written by :func:`ship`)."""
    sidecar = path.with_suffix(".sha256")
    return WeightSource(
        name=name,
        description=description,
        locate=lambda: path if path.is_file() else None,
        importer=NATIVE,
        kind=kind,
        sha256=sidecar.read_text().split()[0] if sidecar.is_file() else None,
        licence=licence,
        provenance={"package": "posterforge", "file": f"{path.parent.name}/{path.name}"},
        how_to_get="reinstall posterforge (these weights ship inside it)",
    )
