"""Labelled image folders for conditional generators: reading labels, counting, balancing.

A shared helper for any conditional family; the vocabulary (a :class:`LabelSet`) decides the
names, and its ``noun`` the column and the messages (``genres`` for the poster families). Two
layouts:

* a labels file next to (or naming files under) the data folder, CSV with a header
  (``path,<noun>s``, or ``path,labels``) or JSON lines (``{"path": ..., "<noun>s":
  "horror|thriller"}`` or a list); several labels per image are separated by ``|``;
* no labels file: sub-folders named by label (``DATA/horror/*.jpg``), one label per image.

Rows that cannot be used (a missing file, no known label, a malformed line) are reported with
their line numbers and skipped; unknown label names on a usable row are reported and ignored.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posterforge.errors import PosterforgeError
from posterforge.labels import LabelSet

if TYPE_CHECKING:
    from posterforge.training.data import LabelledImageStream

BALANCE_MODES = ("cap", "resample", "none")


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    labels: tuple[int, ...]  # indices into the LabelSet, sorted, at least one


@dataclass
class LabelledData:
    items: list[LabelledImage]
    labels: LabelSet
    problems: list[str] = field(default_factory=list)  # "FILE:LINE: reason", in file order

    def counts(self) -> list[int]:
        return label_counts(self.items, len(self.labels))

    def multi_hot(self) -> np.ndarray:
        """``(N, L)`` float32: 1 for each label of each item."""
        out = np.zeros((len(self.items), len(self.labels)), dtype=np.float32)
        for row, item in enumerate(self.items):
            out[row, list(item.labels)] = 1.0
        return out


def label_counts(items: Sequence[LabelledImage], n_labels: int) -> list[int]:
    counts = [0] * n_labels
    for item in items:
        for i in item.labels:
            counts[i] += 1
    return counts


def read_labelled(data: Path, labels: LabelSet, labels_file: Path | None = None) -> LabelledData:
    """The usable images of ``data`` with their labels (see the module docstring)."""
    data = Path(data)
    if not data.is_dir():
        raise PosterforgeError(f"{data}: not a folder")
    if labels_file is None:
        out = _from_folders(data, labels)
    else:
        labels_file = Path(labels_file)
        if not labels_file.is_file():
            raise PosterforgeError(f"{labels_file}: labels file not found")
        rows = _jsonl_rows if labels_file.suffix.lower() in (".jsonl", ".ndjson") else _csv_rows
        out = _from_rows(rows(labels_file, _columns(labels)), data, labels, labels_file.name)
    if not out.items:
        where = labels_file or data
        first = f" (first problem: {out.problems[0]})" if out.problems else ""
        raise PosterforgeError(f"{where}: no usable labelled images{first}")
    return out


Row = tuple[int, str | None, object]  # (line number, path or None, labels or an error string)


def _columns(labels: LabelSet) -> tuple[str, ...]:
    """Header names that hold the labels, most specific first."""
    return (f"{labels.noun}s", labels.noun, "labels", "label")


def _csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[Row]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [h.strip().lower() for h in reader.fieldnames or []]
        reader.fieldnames = fields
        label_col = next((c for c in columns if c in fields), None)
        if label_col is None and len(fields) == 2 and "path" in fields:  # path + one column
            label_col = next(c for c in fields if c != "path")
        if "path" not in fields or label_col is None:
            raise PosterforgeError(
                f"{path}: a labels CSV needs a header with path and {columns[0]}"
            )
        for row in reader:
            yield reader.line_num, row.get("path"), row.get(label_col)


def _jsonl_rows(path: Path, columns: tuple[str, ...]) -> Iterator[Row]:
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                yield line_no, None, f"not a JSON object ({e})"
                continue
            found = next((obj[c] for c in columns if c in obj), None)
            yield line_no, obj.get("path"), found


def _split_labels(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [g for g in value.split("|") if g.strip()]
    if isinstance(value, list) and all(isinstance(g, str) for g in value):
        return [g for g in value if g.strip()]
    return None


def _from_rows(rows: Iterator[Row], data: Path, labels: LabelSet, name: str) -> LabelledData:
    out = LabelledData([], labels)
    noun = labels.noun
    for line, rel, values in rows:
        where = f"{name}:{line}"
        if rel is None:
            reason = values if isinstance(values, str) else "no path"
            out.problems.append(f"{where}: {reason}")
            continue
        names = _split_labels(values)
        if not isinstance(rel, str) or not rel.strip() or names is None:
            out.problems.append(f"{where}: needs a path and {noun}s")
            continue
        path = Path(rel.strip()).expanduser()
        path = path if path.is_absolute() else data / path
        if not path.is_file():
            out.problems.append(f"{where}: no such file {rel.strip()!r}")
            continue
        if not names:
            out.problems.append(f"{where}: no {noun}s")
            continue
        found = {n: labels.find(n) for n in names}
        unknown = ", ".join(repr(n.strip()) for n, i in found.items() if i is None)
        known = sorted({i for i in found.values() if i is not None})
        if unknown:
            skipped = "" if known else " (row skipped)"
            out.problems.append(f"{where}: unknown {noun} {unknown}{skipped}")
        if known:
            out.items.append(LabelledImage(path, tuple(known)))
    return out


def _from_folders(data: Path, labels: LabelSet) -> LabelledData:
    from posterforge.training.data import list_images

    out = LabelledData([], labels)
    subdirs = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise PosterforgeError(
            f"{data}: no labels file and no {labels.noun} sub-folders (pass --labels FILE)"
        )
    for sub in subdirs:
        i = labels.find(sub.name)
        if i is None:
            out.problems.append(f"{sub}: folder is not a {labels.noun} name")
            continue
        out.items += [LabelledImage(p, (i,)) for p in list_images(sub)]
    return out


def balance(
    items: Sequence[LabelledImage],
    n_labels: int,
    mode: str,
    seed: int = 0,
    cap: int | None = None,
) -> list[LabelledImage]:
    """Even out how often each label is seen (the poster reference work balanced 41k posters
    down to 32k this way).

    * ``cap``: visit the items in a seeded random order and keep one while any of its labels is
      still under ``cap`` (default: the mean count of the labels present). Common labels lose
      images; rare labels keep all of theirs.
    * ``resample``: draw ``len(items)`` items with replacement, each with weight
      ``max(1 / count(g) for its labels g)``, so every label is seen about equally often.
    * ``none``: the items as they are.
    """
    if mode not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}, not {mode!r}")
    items = list(items)
    if mode == "none" or not items:
        return items
    counts = np.asarray(label_counts(items, n_labels), dtype=np.float64)
    rng = np.random.default_rng((seed, 7919))
    if mode == "resample":
        weights = np.array([max(1.0 / counts[i] for i in it.labels) for it in items])
        picks = rng.choice(len(items), size=len(items), replace=True, p=weights / weights.sum())
        return [items[i] for i in picks]
    if cap is None:
        cap = int(np.ceil(counts[counts > 0].mean()))
    if cap < 1:
        raise ValueError("balance cap must be at least 1")
    kept, seen = [], np.zeros(n_labels, dtype=np.int64)
    for idx in rng.permutation(len(items)):
        item = items[idx]
        if any(seen[i] < cap for i in item.labels):
            kept.append(item)
            seen[list(item.labels)] += 1
    kept.sort(
        key=lambda it: (os.fspath(it.path), it.labels)
    )  # keep file order; the stream shuffles
    return kept


def counts_table(labels: LabelSet, before: Sequence[int], after: Sequence[int]) -> str:
    """Per-label counts before and after balancing, as plain text for the terminal."""
    width = max(len(n) for n in labels.names)
    width = max(width, len(labels.noun))
    lines = [f"{labels.noun:<{width}}  {'found':>7}  {'used':>7}"]
    rows = zip(labels.names, before, after, strict=True)
    lines += [f"{n:<{width}}  {b:>7}  {a:>7}" for n, b, a in rows]
    return "\n".join(lines)


def labelled_stream(
    inputs: dict[str, Path],
    labels: LabelSet,
    batch_size: int,
    image_size: tuple[int, int],
    *,
    fit: str = "crop",
    balance_mode: str = "cap",
    balance_cap: int | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> LabelledImageStream:
    """A conditional family's training data: ``inputs["data"]`` (a folder) labelled by
    ``inputs["labels"]`` (CSV/JSONL, optional: else sub-folders), balanced, as a
    :class:`~posterforge.training.data.LabelledImageStream` of ``image_size`` (W, H) whose
    ``summary()`` holds the counts. Rank 0 prints unusable rows and the per-label table."""
    from posterforge.training.data import LabelledImageStream

    found = read_labelled(inputs["data"], labels, inputs.get("labels"))
    items = balance(found.items, len(labels), balance_mode, seed, balance_cap)
    if rank == 0:
        report(found, items)
    used = LabelledData(items, labels)
    return LabelledImageStream(
        [it.path for it in items],
        used.multi_hot(),
        batch_size,
        image_size,
        fit=fit,
        seed=seed,
        rank=rank,
        world_size=world_size,
        summary={
            "images_found": len(found.items),
            "images_used": len(items),
            "balance": balance_mode,
            "folder": Path(inputs["data"]).name,
        },
    )


def report(found: LabelledData, items: Sequence[LabelledImage], shown: int = 20) -> None:
    """Unusable label rows (with line numbers) and the per-label counts, on stderr."""
    import sys

    for problem in found.problems[:shown]:
        print(f"posterforge: warning: {problem}", file=sys.stderr)
    if len(found.problems) > shown:
        print(f"posterforge: warning: ... and {len(found.problems) - shown} more", file=sys.stderr)
    before, after = found.counts(), label_counts(items, len(found.labels))
    print(counts_table(found.labels, before, after), file=sys.stderr)
    print(f"{len(items)} of {len(found.items)} images used", file=sys.stderr)
