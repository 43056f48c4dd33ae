"""Find the images and videos to process, map them to output paths and split them into shards.
No torch (PyAV only to probe a named file whose suffix says neither image nor video)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TextIO

from posterforge.errors import PosterforgeError
from posterforge.images import DEFAULT_OUTPUT, FORMATS, IMAGE_SUFFIXES, format_for, is_temp_file
from posterforge.video.containers import (
    ANIMATED_SUFFIXES,
    VIDEO_SUFFIXES,
    is_animated,
    is_video,
    output_rel,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    src: Path  # the input as given or found; it may not exist (decode reports why)
    rel: PurePosixPath  # output path relative to the output dir, still with the input's suffix
    video: bool = False  # a video file (posterforge.video), not an image


class Collision(PosterforgeError):
    """Two inputs would write the same output file."""


def discover(
    inputs: Sequence[str | Path],
    *,
    stdin: TextIO | None = None,
    null: bool = False,
    relative_to: str | Path | None = None,
) -> Iterator[Job]:
    """Yield a Job per input file, lazily and in a deterministic order.

    A file (or anything that is not a directory, even a missing path) gives one job named after it;
    it is a video when its suffix is a video suffix, or no image suffix and PyAV finds a video
    stream in it. A directory gives every image and video (by suffix) below it, sorted, skipping
    hidden entries, temp files and symlinked directories. The literal ``"-"`` reads paths from
    ``stdin`` (``sys.stdin`` when None), one per line, or separated by NUL bytes when ``null``
    (``find -print0``); relative file paths read there keep their directories in ``rel``.

    ``relative_to``: every output is named by its input's path below that folder (files given or
    read from stdin, absolute or not, and the files found in folders); an input outside it raises.
    """
    root = Path(relative_to) if relative_to is not None else None
    for item in inputs:
        if isinstance(item, str) and item == "-":
            for text in _stdin_paths(stdin if stdin is not None else sys.stdin, null):
                yield from _one(Path(text), mirror=True, root=root)
        else:
            yield from _one(Path(item), mirror=False, root=root)


def _stdin_paths(stream: TextIO, null: bool) -> Iterator[str]:
    """The paths in ``stream``: non-blank lines, or with ``null`` the non-empty NUL-separated
    names, read as bytes where the stream has a buffer (any name the file system allows)."""
    if not null:
        for line in stream:
            text = line.rstrip("\r\n")
            if text.strip():
                yield text
        return
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        pending = b""
        for chunk in iter(lambda: buffer.read1(1 << 16), b""):
            *names, pending = (pending + chunk).split(b"\0")
            yield from (os.fsdecode(n) for n in names if n)
        if pending:
            yield os.fsdecode(pending)
        return
    text = ""
    for chunk in iter(lambda: stream.read(1 << 16), ""):
        *names, text = (text + chunk).split("\0")
        yield from (n for n in names if n)
    if text:
        yield text


_HERE = PurePosixPath()


def _one(path: Path, *, mirror: bool, root: Path | None = None) -> Iterator[Job]:
    if os.path.isdir(path):  # unlike Path.is_dir, False on any OSError; decode says what is wrong
        yield from _walk(path, _below(path, root) if root is not None else _HERE)
        return
    video = is_video(path)
    if root is not None:
        yield Job(path, _below(path, root), video)
        return
    rel = PurePosixPath(path.as_posix())
    # a listed tree is mirrored, but never above the output dir or rooted elsewhere
    if not (mirror and not rel.is_absolute() and ".." not in rel.parts):
        rel = PurePosixPath(path.name)
    yield Job(path, rel, video)


def _below(path: Path, root: Path) -> PurePosixPath:
    """``path`` relative to ``root`` (as written, else with symlinked folders resolved)."""
    tries = [(os.path.abspath(path), os.path.abspath(root))]
    # the file itself may be a link: resolve its folder, keep its own name
    real = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), path.name)
    tries.append((real, os.path.realpath(root)))
    for p, r in tries:
        try:
            rel = os.path.relpath(p, r)
        except ValueError:  # another drive on Windows
            continue
        parts = Path(rel).parts  # () for root itself: a folder walked from the top
        if ".." not in parts:
            return PurePosixPath(*parts)
    raise PosterforgeError(f"{path}: not inside --relative-to {root}")


def _walk(top: Path, prefix: PurePosixPath = _HERE) -> Iterator[Job]:
    def warn(e: OSError) -> None:  # an unreadable subdirectory must not stop the run
        log.warning("skipping unreadable directory %s: %s", e.filename, e.strerror)

    # followlinks=False: a symlinked directory can loop or pull in a whole other tree
    for dirpath, dirnames, filenames in os.walk(top, onerror=warn):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # also prunes the walk
        base = prefix / PurePosixPath(Path(os.path.relpath(dirpath, top)).as_posix())
        for name in sorted(filenames):
            if name.startswith(".") or is_temp_file(name):
                continue
            # dangling symlinks are kept on purpose: decode then reports them as "dangling link"
            suffix = os.path.splitext(name)[1].lower()
            if suffix in ANIMATED_SUFFIXES and is_animated(Path(dirpath, name)):
                yield Job(Path(dirpath, name), base / name, video=True)
            elif suffix in IMAGE_SUFFIXES:
                yield Job(Path(dirpath, name), base / name)
            elif suffix in VIDEO_SUFFIXES:
                yield Job(Path(dirpath, name), base / name, video=True)


def output_path(job: Job, out_dir: str | Path, fmt: str | None = None) -> Path:
    """``out_dir / job.rel``, with the suffix of ``fmt`` when given; never outside ``out_dir``.

    Without ``fmt`` the output keeps the input's format, except for the formats that are read but
    not written by default (GIF becomes PNG); an input whose suffix names no image format raises.
    A video keeps its container's suffix where we write that container (else ``.mkv``); ``fmt``
    does not apply to it.
    """
    rel = job.rel
    if rel.is_absolute() or ".." in rel.parts or not rel.name:
        raise PosterforgeError(f"{job.src}: output path {rel} would escape {out_dir}")
    if job.video:
        rel = output_rel(rel)
    elif fmt is not None:
        rel = rel.with_suffix(FORMATS[format_for(fmt)].suffix)
    else:
        try:
            name = format_for(rel.suffix) if rel.suffix else ""
        except ValueError:
            name = ""
        if not name:
            what = f"suffix {rel.suffix!r}" if rel.suffix else "no suffix"
            msg = f"{job.src}: {what} names no image format to write; choose one with --format"
            raise PosterforgeError(msg)
        if name in DEFAULT_OUTPUT:
            rel = rel.with_suffix(FORMATS[DEFAULT_OUTPUT[name]].suffix)
    out = Path(out_dir).joinpath(*rel.parts)
    # second, lexical line of defence, e.g. against a backslash part that Windows would split
    base, target = Path(os.path.normpath(out_dir)), Path(os.path.normpath(out))
    if target == base or not target.is_relative_to(base):
        raise PosterforgeError(f"{job.src}: output path {rel} would escape {out_dir}")
    return out


def unique_outputs(
    jobs: Iterable[Job], out_dir: str | Path, fmt: str | None = None
) -> Iterator[tuple[Job, Path]]:
    """Yield (job, output path) lazily; raise Collision when two jobs would write one file.

    Paths are compared as exact strings: on a case-insensitive file system "A.png" and "a.png"
    still collide undetected.
    """
    seen: dict[str, Path] = {}  # output -> the src that claimed it, to name both in the error
    for job in jobs:
        out = output_path(job, out_dir, fmt)
        key = str(out)
        if key in seen:
            raise Collision(f"{seen[key]} and {job.src} would both write {out}")
        seen[key] = job.src
        yield job, out


_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """Parse "K/N" into (K, N) with 1 <= K <= N."""
    m = _SHARD_RE.fullmatch(text)
    if m is None or not 1 <= int(m[1]) <= int(m[2]):
        raise ValueError(f"invalid shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(m[1]), int(m[2])


def in_shard(job: Job, k: int, n: int) -> bool:
    """Whether ``job`` belongs to shard k of n (1-based); shards 1..n partition any job set.

    The key is a hashlib digest (stable across machines and runs, unlike hash()) of job.rel
    without its suffix, so "a.png" and "a.jpg", which collide once converted to one format,
    always land in the same shard where unique_outputs can see both.
    """
    if not 1 <= k <= n:
        raise ValueError(f"invalid shard {k}/{n}: expected 1 <= K <= N")
    posix = job.rel.as_posix()
    key = posix[: len(posix) - len(job.rel.suffix)]
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n == k - 1
