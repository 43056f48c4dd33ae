"""The lines of a text file of someone else's making, read in bounded memory: a file is checked
against its encoding in chunks, then read line by line with a bound on a line's length, so one
gigabyte-long line costs a chunk of memory, not gigabytes (``labels_file`` reads through here)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from posterforge.errors import PosterforgeError

_CHUNK = 1 << 16


def codec_for(encoding: str) -> str:
    """The codec to read ``encoding`` with: UTF-8 skips a byte-order mark."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def check_encoding(path: Path, encoding: str) -> None:
    """One line naming the file and the line when ``path`` is not ``encoding`` text."""
    decoder = codecs.getincrementaldecoder(codec_for(encoding))("strict")
    newlines = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:  # e.object: the bytes held back, then this chunk
                held = len(e.object) - len(chunk)
                line = newlines + e.object.count(b"\n", max(held, 0), max(e.start, held)) + 1
                raise PosterforgeError(
                    f"{path}:{line}: not {encoding} text (byte 0x{e.object[e.start]:02x}): pass "
                    "the file's encoding with --encoding, e.g. --encoding latin-1"
                ) from None
            if not chunk:
                return
            newlines += chunk.count(b"\n")


def read_lines(path: Path, encoding: str, limit: int) -> Iterator[tuple[int, str | None]]:
    """``(number, line)`` for each physical line (1-based; ends kept: any of \\n, \\r\\n, \\r);
    ``line`` is None for a line longer than ``limit`` characters, whose text is skipped without
    ever being held whole."""
    with open(path, encoding=codec_for(encoding), newline="") as f:
        number = 0
        while line := f.readline(limit + 1):
            number += 1
            if len(line.rstrip("\r\n")) <= limit:
                yield number, line
                continue
            while not line.endswith(("\n", "\r")):  # the rest of the long line, piece by piece
                line = f.readline(limit + 1)
                if not line:
                    break
            yield number, None
