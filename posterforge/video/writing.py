"""The writing of frames: a decoded frame made into the picture written (as shown, bars
cropped, resized), and the writer that encodes frames on worker threads and records each in the
manifest once its file is whole."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.images import encode_atomic
from posterforge.jobs.frames import FrameOptions
from posterforge.records import Status
from posterforge.video.films import Film
from posterforge.video.io import upright_turns
from posterforge.video.manifest import Manifest
from posterforge.video.records import FrameRecord

if TYPE_CHECKING:
    import av.video.frame


class FrameWriter:
    """Encodes frames on worker threads (compressing a PNG costs more than decoding its frame), a
    bounded number at once, and gives their records back in order, each once its file is whole and
    its manifest line written."""

    def __init__(self, manifest: Manifest, workers: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        workers = workers or min(4, os.cpu_count() or 1)
        self.manifest, self.limit = manifest, 2 * workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="posterforge-frames")
        self.pending: deque[tuple[FrameRecord, Future[None] | None, dict[str, Any] | None]]
        self.pending = deque()

    def put(
        self,
        record: FrameRecord,
        rgb: np.ndarray | None = None,
        options: FrameOptions | None = None,
        line: dict[str, Any] | None = None,
    ) -> list[FrameRecord]:
        """Queue ``record`` (and the write of ``rgb`` to its output, when given); returns the
        records settled meanwhile."""
        future = None
        if rgb is not None and options is not None:
            future = self.pool.submit(
                encode_atomic, rgb, record.output, fmt=options.fmt, quality=options.quality
            )
        self.pending.append((record, future, line))
        out = []
        while self.pending and (len(self.pending) > self.limit or _ready(self.pending[0][1])):
            out.append(self._settle())
        return out

    def drain(self) -> Iterator[FrameRecord]:
        while self.pending:
            yield self._settle()

    def _settle(self) -> FrameRecord:
        record, future, line = self.pending.popleft()
        if future is not None and line is not None:
            future.result()  # the write's error, if any, is the run's
            self.manifest.append(line)
            record.status = Status.OK
        return record

    def close(self) -> None:
        """On an early end (Ctrl-C, an error): the writes in flight finish and are recorded."""
        for _, future, line in self.pending:
            if future is not None and line is not None:
                with suppress(Exception):
                    future.result()
                    self.manifest.append(line)
        self.pending.clear()
        self.pool.shutdown(wait=True)


def _ready(future: Future[None] | None) -> bool:
    return future is None or future.done()


def picture(
    frame: av.video.frame.VideoFrame,
    film: Film,
    crop: tuple[int, int, int, int] | None,
    size: tuple[int, int] | int | None,
) -> np.ndarray:
    """The frame as shown (sample aspect ratio applied), cropped, turned upright (its display
    matrix, as translation does) and resized: RGB (H, W, 3). ``crop`` is in stored orientation."""
    if frame.width == film.stored_width and film.width != film.stored_width:
        rgb = frame.to_ndarray(format="rgb24", width=film.width, height=frame.height)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    if crop is not None and rgb.shape[:2] == (film.height, film.width):
        left, top, right, bottom = crop
        rgb = rgb[top:bottom, left:right]
    if turns := upright_turns(frame):
        rgb = np.rot90(rgb, turns)
    if size is not None:
        rgb = resize(rgb, size)
    return np.ascontiguousarray(rgb)


def resize(rgb: np.ndarray, size: tuple[int, int] | int) -> np.ndarray:
    """``N``: the shorter side to N; ``(W, H)``: cover W x H, then centre-crop (no stretching)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if isinstance(size, int):
        scale = size / min(w, h)
        tw, th = max(1, round(w * scale)), max(1, round(h * scale))
        box = None
    else:
        tw, th = size
        scale = max(tw / w, th / h)
        cw, ch = tw / scale, th / scale  # the part of the source that lands in W x H
        x, y = (w - cw) / 2, (h - ch) / 2
        box = (x, y, x + cw, y + ch)
    if (tw, th) == (w, h) and box is None:
        return rgb
    im = Image.fromarray(rgb).resize((tw, th), Image.Resampling.LANCZOS, box=box)
    return np.asarray(im)
