"""A deterministic, resumable, streaming source of image batches for training.

Order depends only on ``(seed, epoch, rank, world_size)``: epoch ``e`` is the permutation drawn by
``numpy.random.default_rng((seed, e))`` and rank ``r`` of ``w`` takes every ``w``-th item of it,
starting at ``r``. Files are decoded on worker threads ahead of use (bounded), but are consumed in
that fixed order, so timing never changes what a batch holds. The stream's state is just
``(epoch, position)``, the next item of this rank's shard, which is what makes resume exact.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posterforge.errors import PosterforgeError
from posterforge.images import ImageError, decode
from posterforge.inputs import discover

log = logging.getLogger(__name__)


def list_images(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The image files of a folder (recursively, sorted) or of an explicit list of paths/folders."""
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    return [job.src for job in discover([Path(p) for p in items])]


Size = int | tuple[int, int]  # a square side, or (width, height)
FITS = ("crop", "pad")


def load_image(path: str | os.PathLike[str], size: Size, fit: str = "crop") -> torch.Tensor:
    """Decode ``path`` to a float ``(3, H, W)`` tensor in ``[0, 1]`` of ``size`` (a side, or
    ``(W, H)``). ``fit="crop"`` resizes (antialiased) until the image covers the target, then
    centre-crops; ``fit="pad"`` resizes until it fits inside, then pads with its edge pixels.
    Raises :class:`ImageError`.

    This runs on the loader's worker threads, so it resizes with Pillow (which releases the GIL
    and starts no threads): torch ops here would fight the training step for its intra-op
    threads, which measured 2.5x slower steps. Augmentation stays batched on the device."""
    from PIL import Image

    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
    tw, th = (size, size) if isinstance(size, int) else size
    im = Image.fromarray(decode(path).rgb)
    w, h = im.size
    scale = (max if fit == "crop" else min)(tw / w, th / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if fit == "crop":
        nw, nh = max(nw, tw), max(nh, th)
    else:
        nw, nh = min(nw, tw), min(nh, th)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BICUBIC)
    rgb = np.asarray(im)
    if fit == "crop":
        left, top = (nw - tw) // 2, (nh - th) // 2
        rgb = rgb[top : top + th, left : left + tw]
    else:
        top, left = (th - nh) // 2, (tw - nw) // 2
        rgb = np.pad(rgb, ((top, th - nh - top), (left, tw - nw - left), (0, 0)), mode="edge")
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div_(255.0)  # own a copy


class ImageFolderStream(Iterator[torch.Tensor]):
    """An endless stream of ``(batch_size, 3, H, W)`` float batches in ``[0, 1]`` (``load_size``
    is a side or ``(W, H)``; see :func:`load_image` for ``fit``).

    Unreadable files are skipped with a warning (once per file); a batch is always full and may
    straddle two epochs. ``state_dict()`` after a batch, loaded into a fresh stream over the same
    files, makes it yield exactly the batches that would have followed.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        batch_size: int,
        load_size: Size,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 2,
        fit: str = "crop",
    ):
        sides = (load_size,) if isinstance(load_size, int) else tuple(load_size)
        if batch_size < 1 or min(sides) < 1:
            raise ValueError("batch_size and load_size must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in range for world_size {world_size}")
        if fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
        self.fit = fit
        self.paths = self._list(source)
        if len(self.paths) < world_size:
            raise PosterforgeError(
                f"no images to train on in {source}"
                if not self.paths
                else f"{len(self.paths)} images in {source} cannot be split over {world_size} ranks"
            )
        self.batch_size = batch_size
        self.load_size = load_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.workers = max(1, workers)
        self.prefetch = 2 * batch_size  # decoded items waiting ahead of use
        self.epoch = 0
        self.position = 0  # next item of this rank's shard of the current epoch
        self._shard_cache: tuple[int, np.ndarray] | None = None
        self._pool: ThreadPoolExecutor | None = None
        # futures for the items after (epoch, position), in order: ((epoch, position), future)
        self._ahead: deque[tuple[tuple[int, int], Future[torch.Tensor]]] = deque()
        self._cursor = (0, 0)  # the next item to submit
        self._warned: set[Path] = set()

    # -- order ---------------------------------------------------------------------------------
    def shard(self, epoch: int) -> np.ndarray:
        """Indices into ``paths`` that this rank reads in ``epoch``, in order."""
        if self._shard_cache is None or self._shard_cache[0] != epoch:
            perm = np.random.default_rng((self.seed, epoch)).permutation(len(self.paths))
            self._shard_cache = (epoch, perm[self.rank :: self.world_size])
        return self._shard_cache[1]

    def _advance(self, epoch: int, position: int) -> tuple[int, int]:
        position += 1
        if position >= len(self.shard(epoch)):
            return epoch + 1, 0
        return epoch, position

    # -- prefetch ------------------------------------------------------------------------------
    def _fill(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pf-data")
            self._cursor = (self.epoch, self.position)
        while len(self._ahead) < self.prefetch:
            epoch, position = self._cursor
            path = self.paths[self.shard(epoch)[position]]
            fut = self._pool.submit(load_image, path, self.load_size, self.fit)
            self._ahead.append((self._cursor, fut))
            self._cursor = self._advance(epoch, position)

    def _drop_prefetch(self) -> None:
        for _, fut in self._ahead:
            fut.cancel()
        self._ahead.clear()
        self._cursor = (self.epoch, self.position)

    def _list(self, source: Any) -> list[Path]:
        return list_images(source)

    def _collate(self, indices: list[int], images: list[torch.Tensor]) -> Any:
        return torch.stack(images)

    def __next__(self) -> Any:
        items: list[torch.Tensor] = []
        indices: list[int] = []
        failures = 0  # consecutive unreadable files; a whole shard of them means nothing to read
        while len(items) < self.batch_size:
            self._fill()
            (epoch, position), fut = self._ahead.popleft()
            assert (epoch, position) == (self.epoch, self.position)
            self.epoch, self.position = self._advance(epoch, position)
            try:
                items.append(fut.result())
                indices.append(int(self.shard(epoch)[position]))
                failures = 0
            except ImageError as e:
                self._skip(e.path, e.reason)
                failures += 1
            except Exception as e:  # a resize failure on a degenerate image, say
                self._skip(self.paths[self.shard(epoch)[position]], f"{type(e).__name__}: {e}")
                failures += 1
            if failures >= len(self.shard(self.epoch)) + len(self.shard(epoch)):
                self.close()
                raise PosterforgeError(
                    f"no readable images in rank {self.rank}'s share of {len(self.paths)} files"
                )
        return self._collate(indices, items)

    def __iter__(self) -> ImageFolderStream:
        return self

    def _skip(self, path: Path, reason: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            # one line, as every other warning (a raw UserWarning printed its source line)
            log.warning("posterforge: warning: skipping unreadable training image %s: %s", path,
                        reason)  # fmt: skip

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position < len(self.shard(epoch)):
            raise ValueError(f"data state {state} does not fit {len(self.paths)} images")
        self.epoch, self.position = epoch, position
        self._drop_prefetch()

    def close(self) -> None:
        """Stop the worker threads; the stream restarts them if used again."""
        self._drop_prefetch()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ImageFolderStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class LabelledImageStream(ImageFolderStream):
    """An :class:`ImageFolderStream` over explicit files with label vectors: each batch is
    ``{"image": (B, 3, H, W), "labels": (B, L)}``. ``files`` may repeat a file (resampling).
    ``summary`` (counts of what was found and used) is what :meth:`summary` reports to the run;
    ``recipe_updates`` (recipe keys the data decided, e.g. label names taken from the data) is
    what :meth:`recipe_updates` gives the run to store before it builds the task; ``report``
    (the full list of the data's problems) what :meth:`data_report` gives it to keep."""

    def __init__(
        self,
        files: Sequence[Path],
        labels: np.ndarray,
        batch_size: int,
        load_size: Size,
        *,
        summary: dict[str, Any] | None = None,
        recipe_updates: dict[str, Any] | None = None,
        report: str | None = None,
        **kw: Any,
    ):
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} label rows")
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.float32))
        self._summary = dict(summary or {})
        self._recipe_updates = dict(recipe_updates or {})
        self._report = report
        self.held: tuple[list[Path], np.ndarray] | None = None
        self._load_held: Callable[[], torch.Tensor] | None = None
        super().__init__(list(files), batch_size, load_size, **kw)

    def hold_out(
        self, paths: Sequence[Path], rows: np.ndarray, load: Callable[[], torch.Tensor]
    ) -> None:
        """Keep ``paths`` (with their ``rows``) for the metrics; ``load()`` reads them."""
        self.held = (list(paths), np.asarray(rows, dtype=np.float32))
        self._load_held = load

    def held_out(self) -> dict[str, torch.Tensor] | None:
        """The images held out for the metrics, ``{"image": (N, 3, H, W), "labels": (N, L)}``
        at the training size (None: none held out)."""
        if self.held is None or self._load_held is None:
            return None
        return {"image": self._load_held(), "labels": torch.from_numpy(self.held[1].copy())}

    def summary(self) -> dict[str, Any]:
        return dict(self._summary)

    def recipe_updates(self) -> dict[str, Any]:
        return dict(self._recipe_updates)

    def data_report(self) -> str | None:
        """Every problem the data had (one a line), for the run folder; None: none."""
        return self._report

    def _list(self, source: Any) -> list[Path]:
        return [Path(p) for p in source]

    def _collate(self, indices: list[int], images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"image": torch.stack(images), "labels": self.labels[indices]}
