"""The weight store: ``$POSTERFORGE_HOME/weights/NAME.safetensors`` plus ``NAME.sha256``.

The sha256 sidecar is written with the file and checked when the file is used, so a truncated
or altered file is an error rather than a silently wrong style.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge import weights
from posterforge.atomic import write_text_atomic
from posterforge.errors import PosterforgeError, WeightsError
from posterforge.weights import read_header, save_weights

if TYPE_CHECKING:
    import torch

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SUFFIX = ".safetensors"


def home() -> Path:
    """``$POSTERFORGE_HOME``, else ``$XDG_CACHE_HOME/posterforge``, else ~/.cache/posterforge."""
    if env := os.environ.get("POSTERFORGE_HOME"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "posterforge"


def check_name(name: str) -> str:
    """Store names become file names: allow no separators, no leading dot, nothing exotic."""
    if not NAME_RE.match(name) or ".." in name:
        raise PosterforgeError(
            f"invalid weight name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    if name.lower().endswith((".safetensors", ".pth", ".pt", ".sha256")):
        # such a name would be read as a file path wherever a name is accepted
        stem = name.rsplit(".", 1)[0]
        raise PosterforgeError(f"invalid weight name {name!r}: leave out the suffix ({stem!r})")
    return name


@dataclass(frozen=True)
class StoredWeights:
    name: str
    path: Path
    header: dict[str, Any]
    size: int
    problem: str | None = None  # why the file is unusable (listed, never used)


def _not_a_file(path: Path) -> str | None:
    """What a store entry is when it is no file: a folder, or a link that leads nowhere."""
    if path.is_dir():
        return "a folder, not a weight file"
    if path.is_symlink() and not path.exists():
        return f"a link to {os.readlink(path)}, which does not exist"
    return None


class Store:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else home()

    @property
    def weights_dir(self) -> Path:
        return self.root / "weights"

    def path_for(self, name: str) -> Path:
        return self.weights_dir / (check_name(name) + SUFFIX)

    def has(self, name: str) -> bool:
        return NAME_RE.match(name) is not None and self.path_for(name).is_file()

    def names(self) -> list[str]:
        """Every ``*.safetensors`` entry, usable or not (links and folders included)."""
        if not self.weights_dir.is_dir():
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in self.weights_dir.glob("*" + SUFFIX))

    def entries(self) -> list[StoredWeights]:
        """Every file of the store; one that is not a usable weight file is listed with its
        ``problem`` (a junk file must not hide the others)."""
        self.tidy()
        out = []
        for name in self.names():
            path = self.weights_dir / (name + SUFFIX)  # as found: even a name we would refuse
            header, problem = {}, _not_a_file(path)
            if problem is None:
                try:
                    header = read_header(path)
                except WeightsError as e:
                    problem = str(e).removeprefix(f"{path}: ")
            if problem is None and not NAME_RE.match(name):
                problem = "a file name that is not a weight name"
            size = path.stat().st_size if path.is_file() else 0
            out.append(StoredWeights(name, path, header, size, problem))
        return out

    def remove(self, name: str) -> Path:
        """Remove what ``weights list`` shows as ``name``: a weight file, or an unusable entry
        (a link, dangling or not, or an empty folder of that name); never a folder with files."""
        path = self.path_for(name)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            try:
                path.rmdir()
            except OSError:
                raise WeightsError(
                    f"{path}: a folder holding files, not weights; remove it by hand"
                ) from None
        else:
            raise WeightsError(f"no weights named {name!r} in {self.weights_dir}")
        path.with_suffix(".sha256").unlink(missing_ok=True)
        return path

    def rename(self, old: str, new: str, *, overwrite: bool = False) -> Path:
        src, dst = self.path_for(old), self.path_for(new)
        if not src.is_file():
            raise WeightsError(f"no weights named {old!r} in {self.weights_dir}")
        if dst.exists() and not overwrite:
            raise PosterforgeError(f"weights named {new!r} exist already; pass --overwrite")
        sidecar = src.with_suffix(".sha256")
        if sidecar.is_file():  # the sidecar names the file: write the new one first
            digest = sidecar.read_text().split()[0]
            write_text_atomic(dst.with_suffix(".sha256"), f"{digest}  {dst.name}\n")
        os.replace(src, dst)
        sidecar.unlink(missing_ok=True)
        return dst

    def put(
        self,
        name: str,
        tensors: Mapping[str, torch.Tensor],
        header: Mapping[str, Any],
        *,
        overwrite: bool = False,
    ) -> Path:
        path = self.path_for(name)
        if path.exists() and not overwrite:
            raise PosterforgeError(
                f"{path}: weights named {name!r} exist already; pass --overwrite to replace them"
            )
        self.tidy()
        digest = save_weights(path, tensors, header)
        write_text_atomic(path.with_suffix(".sha256"), f"{digest}  {path.name}\n")
        return path

    def tidy(self) -> int:
        """Remove the temp files that killed writers left (an import or a training run killed
        mid-write); a live writer's are kept. Returns how many went."""
        from posterforge.atomic import remove_stale

        return remove_stale(self.weights_dir)

    def verified_path(self, name: str) -> Path:
        """The path of ``name``, after checking it against its recorded sha256."""
        return self.verified(name)[0]

    def verified(self, name: str) -> tuple[Path, str]:
        """The path of ``name`` and its sha256, computed once and checked against the recorded
        one (a file without a sidecar is hashed all the same: runs name models by it)."""
        path = self.path_for(name)
        if not path.is_file():
            raise WeightsError(f"no weights named {name!r} in {self.weights_dir}")
        actual = weights.sha256_file(path)
        sidecar = path.with_suffix(".sha256")
        if not sidecar.is_file():  # copied in by hand, or killed between the two writes:
            with suppress(OSError):  # checked from now on
                write_text_atomic(sidecar, f"{actual}  {path.name}\n")
        else:
            expected = sidecar.read_text().split()[0]
            if actual != expected:
                raise WeightsError(
                    f"{path}: sha256 mismatch (expected {expected[:12]}…, found {actual[:12]}…); "
                    "the file is damaged: delete it and import or train it again"
                )
        return path, actual
