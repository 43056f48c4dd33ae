"""Reading labelled image folders: a labels file (CSV or JSON lines) or one sub-folder per label,
into :class:`LabelledData` (the usable images with their label indices, what was dropped and
why, the names outside the vocabulary). See :mod:`posterforge.training.labelled` for the layouts.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posterforge.errors import PosterforgeError
from posterforge.labels import LabelSet, normalise
from posterforge.training.labels_file import OUTSIDE, LabelsFormat, Row, escapes, read_rows

# why rows were dropped, for the summary (labels_file adds "quote", "malformed", "outside")
NO_IMAGE, NO_LABELS, UNKNOWN = "no_image", "no_labels", "unknown"
DUPLICATE, UNDECODABLE = "duplicate", "undecodable"
REASONS = {
    DUPLICATE: "naming a file an earlier row names (dropped: trained once)",
    UNDECODABLE: "with an image that does not decode",
    UNKNOWN: "with no known {noun}",
    NO_IMAGE: "with no image",
    NO_LABELS: "with no {noun}s",
    "quote": "with an unclosed quote",
    "outside": "with a path outside the data folder",
    "malformed": "malformed",
    "long": "with a line too long",
}


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    labels: tuple[int, ...]  # indices into the LabelSet, sorted, at least one


@dataclass
class LabelledData:
    items: list[LabelledImage]
    labels: LabelSet
    problems: list[str] = field(default_factory=list)  # "FILE:LINE: reason", in file order
    source: str | None = None  # the labels file's name (None: label folders)
    rows: int = 0  # data rows read from the labels file
    dropped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), in file order
    unknown: Counter[str] = field(default_factory=Counter)  # unknown name (normalised) -> rows

    def counts(self) -> list[int]:
        return label_counts(self.items, len(self.labels))

    def multi_hot(self) -> np.ndarray:
        """``(N, L)`` float32: 1 for each label of each item."""
        out = np.zeros((len(self.items), len(self.labels)), dtype=np.float32)
        for row, item in enumerate(self.items):
            out[row, list(item.labels)] = 1.0
        return out

    def summary_line(self) -> str | None:
        """``labels.csv: 41,204 rows read, 32,010 used, 9,194 dropped (8,901 with no known
        genre, 293 with no image; first at lines 17, 45, 90)``; None for label folders."""
        if self.source is None:
            return None
        n_drop = len(self.dropped)
        head = f"{self.source}: {self.rows:,} rows read, {self.rows - n_drop:,} used"
        if not n_drop:
            return f"{head}, none dropped"
        lines = ", ".join(str(line) for line, _ in self.dropped[:3])
        at = f"at line {lines}" if n_drop == 1 else f"first at lines {lines}"
        return f"{head}, {n_drop:,} dropped ({', '.join(self.drop_reasons())}; {at})"

    def drop_reasons(self) -> list[str]:
        """``["8,901 with no known genre", "293 with no image"]``, most common first."""
        by_reason = Counter(reason for _, reason in self.dropped)
        noun = self.labels.noun
        return [f"{n:,} {REASONS.get(r, r).format(noun=noun)}" for r, n in by_reason.most_common()]

    def unknown_line(self, shown: int = 12) -> str | None:
        """The label names outside the vocabulary, most common first (None if there are none)."""
        if not self.unknown:
            return None
        common = self.unknown.most_common()
        names = ", ".join(f"{name} ({n:,})" for name, n in common[:shown])
        more = f" and {len(common) - shown} more" if len(common) > shown else ""
        where = self.source or "the data"
        return (
            f"{where}: {self.labels.noun}s not in the vocabulary, ignored: {names}{more} "
            "(--labels-from-data keeps them)"
        )


def label_counts(items: Sequence[LabelledImage], n_labels: int) -> list[int]:
    counts = [0] * n_labels
    for item in items:
        for i in item.labels:
            counts[i] += 1
    return counts


def read_labelled(
    data: Path,
    labels: LabelSet,
    labels_file: Path | None = None,
    fmt: LabelsFormat | None = None,
    *,
    from_data: bool = False,
) -> LabelledData:
    """The usable images of ``data`` with their labels (see the module docstring). With
    ``from_data``, ``labels`` only lends its noun, spellings and aliases: the result's
    vocabulary is made from the labels found."""
    data = Path(data)
    if not data.is_dir():
        raise PosterforgeError(f"{data}: not a folder")
    if labels_file is None:
        out = _from_folders(data, labels, from_data)
    else:
        labels_file = Path(labels_file)
        if not labels_file.is_file():
            raise PosterforgeError(f"{labels_file}: labels file not found")
        rows = read_rows(labels_file, _columns(labels), fmt or LabelsFormat())
        out = _from_rows(rows, data, labels, labels_file.name, from_data)
    if not out.items:
        where = labels_file or data
        first = f" (first problem: {out.problems[0]})" if out.problems else ""
        raise PosterforgeError(f"{where}: no usable labelled images{first}")
    return out


def _columns(labels: LabelSet) -> tuple[str, ...]:
    """Header names that hold the labels, most specific first."""
    return (f"{labels.noun}s", labels.noun, "labels", "label")


def _split_labels(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [g.strip() for g in value.replace(",", "|").split("|") if g.strip()]
    if isinstance(value, list) and all(isinstance(g, str) for g in value):
        return [g.strip() for g in value if g.strip()]
    return None


def vocabulary_from(found: Iterable[Sequence[str]], base: LabelSet) -> LabelSet:
    """The vocabulary of the label names ``found`` (one sequence per image): every name, spelled
    as ``base`` spells it (aliases included) or else normalised, most common first, ties by
    name; ``base``'s noun and the aliases that point at a kept name come along."""
    counts: Counter[str] = Counter()
    for names in found:
        counts.update({_spelling(n, base) for n in names})
    order = sorted(counts, key=lambda n: (-counts[n], n))
    if not order:
        return base
    return LabelSet.from_dict(base.as_dict(), names=order)


def _spelling(name: str, base: LabelSet) -> str:
    i = base.find(name)
    return base.names[i] if i is not None else normalise(name)


def inside(data: Path, rel: str) -> Path | None:
    """``data / rel`` when ``rel`` is relative and stays inside ``data`` once every symlink is
    resolved; None otherwise (absolute, ``~``, ``..``, or a link that points out)."""
    if escapes(rel) or rel.startswith("~"):
        return None
    path = data / rel
    try:
        if not path.resolve().is_relative_to(data.resolve()):
            return None
    except (OSError, RuntimeError):  # a symlink loop, or a name the OS refuses
        return None
    return path


def _from_rows(
    rows: Iterable[Row], data: Path, labels: LabelSet, name: str, from_data: bool
) -> LabelledData:
    noun = labels.noun
    notes: list[tuple[int, str]] = []  # (line, problem), sorted at the end
    dropped: list[tuple[int, str]] = []
    usable: list[tuple[int, Path, list[str]]] = []
    first_row: dict[Path, int] = {}  # each file's first row: a later one is a duplicate
    n_rows = 0
    for row in rows:
        n_rows += 1
        where = f"{name}:{row.line}"
        if row.error is not None:
            dropped.append((row.line, row.error[0]))
            notes.append((row.line, f"{where}: {row.error[1]}"))
            continue
        names = _split_labels(row.labels)
        rel = row.path
        if not isinstance(rel, str) or not rel.strip() or names is None:
            dropped.append((row.line, "malformed"))
            notes.append((row.line, f"{where}: needs a path and {noun}s"))
            continue
        path = inside(data, rel.strip())
        if path is None:  # refused unread, as --path-template refuses such paths
            dropped.append((row.line, OUTSIDE))
            notes.append((row.line, f"{where}: path {rel.strip()!r} is outside the data folder"))
            continue
        if not path.is_file():
            dropped.append((row.line, NO_IMAGE))
            notes.append((row.line, f"{where}: no such file {rel.strip()!r}"))
            continue
        if not names:
            dropped.append((row.line, NO_LABELS))
            notes.append((row.line, f"{where}: no {noun}s"))
            continue
        usable.append((row.line, path, names))
    broken = undecodable([path for _, path, _ in usable])
    for line, path, _ in usable:
        if path in broken:
            dropped.append((line, UNDECODABLE))
            notes.append((line, f"{name}:{line}: {path.name}: {broken[path]}"))
    usable = [u for u in usable if u[1] not in broken]
    if from_data:
        labels = vocabulary_from((names for _, _, names in usable), labels)
    out = LabelledData([], labels, source=name, rows=n_rows)
    for line, path, names in usable:
        found = {n: labels.find(n) for n in names}
        unknown = [n for n, i in found.items() if i is None]
        known = sorted({i for i in found.values() if i is not None})
        if unknown:
            skipped = "" if known else " (row skipped)"
            shown = ", ".join(repr(n) for n in unknown)
            notes.append((line, f"{name}:{line}: unknown {noun} {shown}{skipped}"))
            out.unknown.update({_spelling(n, labels) for n in unknown})
        if not known:
            dropped.append((line, UNKNOWN))
            continue
        same = first_row.setdefault(_identity(path), line)  # a usable row's file, once
        if same != line:
            dropped.append((line, DUPLICATE))
            notes.append((line, f"{name}:{line}: {path.name!r} is the file of line {same}"))
            continue
        out.items.append(LabelledImage(path, tuple(known)))
    out.dropped = sorted(dropped)
    out.problems = [text for _, text in sorted(notes, key=lambda n: n[0])]
    return out


def _from_folders(data: Path, labels: LabelSet, from_data: bool = False) -> LabelledData:
    from posterforge.training.data import list_images

    subdirs = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise PosterforgeError(
            f"{data}: no labels file and no {labels.noun} sub-folders (pass --labels FILE)"
        )
    images = {sub: list_images(sub) for sub in subdirs}
    if from_data:
        labels = vocabulary_from(
            ([sub.name] for sub, found in images.items() for _ in found), labels
        )
    out = LabelledData([], labels)
    broken = undecodable([p for found in images.values() for p in found])
    for sub in subdirs:
        i = labels.find(sub.name)
        if i is None:
            out.problems.append(f"{sub}: folder is not a {labels.noun} name")
            continue
        out.problems += [f"{p}: {broken[p]} (skipped)" for p in images[sub] if p in broken]
        out.items += [LabelledImage(p, (i,)) for p in images[sub] if p not in broken]
    return out


def _identity(path: Path) -> Path:
    """One key per file, however the rows spell it (``a.jpg``, ``./a.jpg``, a link to it)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def undecodable(paths: Sequence[Path]) -> dict[Path, str]:
    """The files among ``paths`` that do not decode, with the reason, checked cheaply (the
    header, then a reduced decode: a JPEG's draft at 1/8 scale still reads every byte, so a
    truncated file fails) on a few threads (Pillow decodes without the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        reasons = list(pool.map(_decode_problem, paths))
    return {p: r for p, r in zip(paths, reasons, strict=True) if r is not None}


def _decode_problem(path: Path) -> str | None:
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # a decompression-bomb warning is not for the user here
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
    except Exception as e:  # whatever Pillow raises: the file is not an image we can read
        reason = str(e).strip() or type(e).__name__
        return f"does not decode ({reason})"
    return None
