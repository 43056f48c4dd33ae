"""Latent files: what ``posterforge project`` finds for a poster, as a ``.npz`` that
``generate --from-latent`` renders again under other labels.

A file holds ``latent`` ``(D,)`` float32, ``kind`` (``"w"`` or ``"z"``, the family's
``latent_kind``), ``model_sha256`` (the weights it belongs to: a latent means nothing under
another model), ``model`` (the name it was made with) and ``label`` (the canonical caption of the
label it was projected under, empty for an unconditional model). Read with
``allow_pickle=False``; every fault is one line naming the file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posterforge.atomic import atomic_write
from posterforge.errors import PosterforgeError


class LatentError(PosterforgeError):
    """A latent file that cannot be used with this model: ``x.npz: <reason>``."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class LatentFile:
    latent: np.ndarray  # (D,) float32
    kind: str
    model_sha256: str
    model: str = ""
    label: str = ""

    def save(self, path: str | Path) -> None:
        """Written atomically (temp file + rename)."""
        buf = io.BytesIO()
        np.savez(
            buf,
            latent=np.asarray(self.latent, dtype=np.float32).reshape(-1),
            kind=np.array(self.kind),
            model_sha256=np.array(self.model_sha256),
            model=np.array(self.model),
            label=np.array(self.label),
        )
        with atomic_write(path) as f:
            f.write(buf.getvalue())


def load_latent(path: str | Path) -> LatentFile:
    """A latent file, checked for its keys and types (not yet against a model)."""
    path = Path(path)
    if not path.is_file():
        raise LatentError(path, "no such latent file")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            missing = sorted({"latent", "kind", "model_sha256", "label"} - keys)
            if missing:
                raise LatentError(path, f"not a posterforge latent (no {', '.join(missing)})")
            latent = np.asarray(data["latent"])
            fields = {k: str(data[k]) for k in ("kind", "model_sha256", "label")}
            model = str(data["model"]) if "model" in keys else ""
    except LatentError:
        raise
    except Exception as e:  # not a zip, a pickled array, a truncated file
        raise LatentError(path, f"cannot read it as a latent .npz ({type(e).__name__})") from None
    if latent.dtype.kind != "f" or not np.isfinite(latent).all():
        raise LatentError(path, "the latent must hold finite floats")
    return LatentFile(latent.astype(np.float32), fields["kind"], fields["model_sha256"], model,
                      fields["label"])  # fmt: skip


def check_latent(
    lf: LatentFile, path: str | Path, *, kind: str, dim: int, sha256: str | None
) -> np.ndarray:
    """The latent as ``(D,)`` when it fits the model (its kind, its size, its weights)."""
    if sha256 is not None and lf.model_sha256 != sha256:
        raise LatentError(
            path,
            f"made with another model (sha256 {lf.model_sha256[:12]}..., this model "
            f"{sha256[:12]}...)",
        )
    if lf.kind != kind:
        raise LatentError(path, f"a {lf.kind!r} latent, but this model's latents are {kind!r}")
    shape = tuple(lf.latent.shape)
    if shape not in ((dim,), (1, dim)):
        raise LatentError(path, f"latent of shape {shape}: this model takes ({dim},)")
    return lf.latent.reshape(dim)
