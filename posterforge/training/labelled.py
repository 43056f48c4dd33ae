"""Labelled image folders for conditional generators: reading labels, counting, balancing.

A shared helper for any conditional family; the vocabulary (a :class:`LabelSet`) decides the
names, and its ``noun`` the column and the messages (``genres`` for the poster families). Two
layouts:

* a labels file next to (or naming files under) the data folder, CSV with a header
  (``path,<noun>s``, or ``path,labels``) or JSON lines (``{"path": ..., "<noun>s":
  "horror|thriller"}`` or a list); several labels per image are separated by ``|`` (or by
  commas inside one field); other columns, a path template and the encoding are described by a
  :class:`~posterforge.training.labels_file.LabelsFormat` (``MovieGenre.csv`` as it is);
* no labels file: sub-folders named by label (``DATA/horror/*.jpg``), one label per image.

Rows that cannot be used (a missing file, no known label, an unclosed quote, a malformed line)
are reported with their line numbers and skipped, and counted by reason; unknown label names on
a usable row are reported and ignored. With ``from_data`` the vocabulary is the data's own: every
label with an image, most common first (ties by name), spelled as the base vocabulary spells it
(its aliases apply) or else normalised (``Film-Noir`` -> ``film-noir``).

:class:`LabelledRecipe` holds the recipe keys of all this; a family's recipe inherits it, and
:func:`posterforge.family.labelled_options` offers them on the command line.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posterforge.errors import PosterforgeError
from posterforge.labels import LabelSet, normalise
from posterforge.training.labels_file import LabelsFormat, Row, read_rows

if TYPE_CHECKING:
    from posterforge.training.data import LabelledImageStream

BALANCE_MODES = ("cap", "resample", "none")
MIN_USABLE = 0.1  # refuse a labels file of which fewer rows are usable (min_usable)
# why rows were dropped, for the summary (labels_file adds "quote", "malformed", "outside")
NO_IMAGE, NO_LABELS, UNKNOWN = "no_image", "no_labels", "unknown"
REASONS = {
    UNKNOWN: "with no known {noun}",
    NO_IMAGE: "with no image",
    NO_LABELS: "with no {noun}s",
    "quote": "with an unclosed quote",
    "outside": "with a path outside the data folder",
    "malformed": "malformed",
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


def _from_rows(
    rows: Iterable[Row], data: Path, labels: LabelSet, name: str, from_data: bool
) -> LabelledData:
    noun = labels.noun
    notes: list[tuple[int, str]] = []  # (line, problem), sorted at the end
    dropped: list[tuple[int, str]] = []
    usable: list[tuple[int, Path, list[str]]] = []
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
        path = Path(rel.strip()).expanduser()
        path = path if path.is_absolute() else data / path
        if not path.is_file():
            dropped.append((row.line, NO_IMAGE))
            notes.append((row.line, f"{where}: no such file {rel.strip()!r}"))
            continue
        if not names:
            dropped.append((row.line, NO_LABELS))
            notes.append((row.line, f"{where}: no {noun}s"))
            continue
        usable.append((row.line, path, names))
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
        if known:
            out.items.append(LabelledImage(path, tuple(known)))
        else:
            dropped.append((line, UNKNOWN))
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
    for sub in subdirs:
        i = labels.find(sub.name)
        if i is None:
            out.problems.append(f"{sub}: folder is not a {labels.noun} name")
            continue
        out.items += [LabelledImage(p, (i,)) for p in images[sub]]
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


@dataclass
class LabelledRecipe:
    """The ``[model]`` recipe keys of a family trained on labelled images; the family's recipe
    dataclass inherits them (and calls ``super().__post_init__()``), and
    :func:`posterforge.family.labelled_options` offers them as ``train`` options:

    - ``labels``: the vocabulary, a labels preset (each family sets its default);
    - ``labels_from_data``: make the vocabulary from the data instead (see
      :func:`read_labelled`; the preset still lends its noun, spellings and aliases); the run
      then stores the names found as ``label_names``, the vocabulary's slots from then on;
    - ``fit``, ``balance``, ``balance_cap``: see :func:`labelled_stream` and :func:`balance`;
    - ``min_usable``: the share of a labels file's rows that must be usable (0: any);
    - ``label_column``, ``path_column``, ``path_template``, ``encoding``: how the labels file is
      read (:class:`~posterforge.training.labels_file.LabelsFormat`).
    """

    labels: str = ""
    labels_from_data: bool = False
    label_names: list[str] | None = None
    fit: str = "crop"  # images of another shape: "crop" (cover, centre-crop) or "pad"
    balance: str = "cap"  # "cap" | "resample" | "none"
    balance_cap: int | None = None  # with "cap": the most images per label (default: the mean)
    min_usable: float = MIN_USABLE
    label_column: str = ""  # default: <noun>s, <noun>, labels or label
    path_column: str = ""  # default: path
    path_template: str = ""  # e.g. "{imdbId}.jpg"
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        from posterforge.training.data import FITS

        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}, not {self.fit!r}")
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}")
        if not isinstance(self.labels_from_data, bool):
            raise ValueError(f"labels_from_data must be true or false: {self.labels_from_data!r}")
        try:
            self.min_usable = float(self.min_usable)
        except (TypeError, ValueError):
            self.min_usable = -1.0
        if not 0.0 <= self.min_usable <= 1.0:
            raise ValueError("min_usable must be a share of the rows, from 0 to 1 (0: any)")
        names = self.label_names
        if names is not None and (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n for n in names)
            or len(set(names)) != len(names)
        ):
            raise ValueError("label_names must be a list of distinct names")
        self.format()  # the encoding and the path template are checked now, before any work

    def format(self) -> LabelsFormat:
        return LabelsFormat(self.path_column, self.label_column, self.path_template, self.encoding)

    def vocabulary(self) -> LabelSet:
        """The labels preset ``labels``, or its spellings over ``label_names`` when set."""
        from posterforge import presets
        from posterforge.plugins import get_host

        base = presets.labels(self.labels, get_host())
        if self.label_names is None:
            return base
        return LabelSet.from_dict(base.as_dict(), names=self.label_names)

    def stream(
        self,
        inputs: dict[str, Path],
        batch_size: int,
        image_size: tuple[int, int],
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> LabelledImageStream:
        """:func:`labelled_stream` as these keys say."""
        return labelled_stream(
            inputs,
            self.vocabulary(),
            batch_size,
            image_size,
            fit=self.fit,
            balance_mode=self.balance,
            balance_cap=self.balance_cap,
            fmt=self.format(),
            from_data=self.labels_from_data and self.label_names is None,
            min_usable=self.min_usable,
            seed=seed,
            rank=rank,
            world_size=world_size,
        )


def labelled_stream(
    inputs: dict[str, Path],
    labels: LabelSet,
    batch_size: int,
    image_size: tuple[int, int],
    *,
    fit: str = "crop",
    balance_mode: str = "cap",
    balance_cap: int | None = None,
    fmt: LabelsFormat | None = None,
    from_data: bool = False,
    min_usable: float = MIN_USABLE,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> LabelledImageStream:
    """A conditional family's training data: ``inputs["data"]`` (a folder) labelled by
    ``inputs["labels"]`` (CSV/JSONL read as ``fmt`` says, optional: else sub-folders), balanced,
    as a :class:`~posterforge.training.data.LabelledImageStream` of ``image_size`` (W, H) whose
    ``summary()`` holds the counts (``label_counts``: images per label, after balancing). Rank 0
    prints unusable rows, the summary and the per-label table.

    With ``from_data`` the vocabulary comes from the data (see :func:`read_labelled`), and the
    stream's ``recipe_updates()`` holds its names as ``label_names``, for the run to store. A
    labels file of which less than ``min_usable`` (a fraction) of the rows are usable is refused
    (a wrong column or template, most likely)."""
    from posterforge.training.data import LabelledImageStream

    found = read_labelled(inputs["data"], labels, inputs.get("labels"), fmt, from_data=from_data)
    labels = found.labels
    items = balance(found.items, len(labels), balance_mode, seed, balance_cap)
    if rank == 0:
        report(found, items)
    check_usable(found, min_usable)
    used = LabelledData(items, labels)
    summary: dict[str, Any] = {
        "images_found": len(found.items),
        "images_used": len(items),
        "balance": balance_mode,
        "folder": Path(inputs["data"]).name,
    }
    if found.source is not None:
        summary |= {"rows_read": found.rows, "rows_dropped": len(found.dropped)}
    summary["label_counts"] = dict(zip(labels.names, used.counts(), strict=True))
    return LabelledImageStream(
        [it.path for it in items],
        used.multi_hot(),
        batch_size,
        image_size,
        fit=fit,
        seed=seed,
        rank=rank,
        world_size=world_size,
        summary=summary,
        recipe_updates={"label_names": list(labels.names)} if from_data else None,
    )


def check_usable(found: LabelledData, min_usable: float) -> None:
    """Refuse a labels file of which fewer than ``min_usable`` of the rows are usable."""
    if found.source is None or not found.rows:
        return
    used = found.rows - len(found.dropped)
    if used >= min_usable * found.rows:
        return
    share = used / found.rows
    raise PosterforgeError(
        f"{found.source}: only {used:,} of {found.rows:,} rows are usable ({share:.1%}, "
        f"under --min-usable {min_usable:g}; {len(found.dropped):,} dropped: "
        f"{', '.join(found.drop_reasons())}): check the columns, --path-template and --encoding "
        f"against the rows reported above, or pass --min-usable 0 to train on the {used:,} left"
    )


def report(found: LabelledData, items: Sequence[LabelledImage], shown: int = 20) -> None:
    """Unusable label rows (with line numbers), the rows read, used and dropped, label names
    outside the vocabulary, and the per-label counts, on stderr."""
    for problem in found.problems[:shown]:
        print(f"posterforge: warning: {problem}", file=sys.stderr)
    if len(found.problems) > shown:
        print(f"posterforge: warning: ... and {len(found.problems) - shown} more", file=sys.stderr)
    for line in (found.summary_line(), found.unknown_line()):
        if line is not None:
            print(line, file=sys.stderr)
    before, after = found.counts(), label_counts(items, len(found.labels))
    print(counts_table(found.labels, before, after), file=sys.stderr)
    print(f"{len(items)} of {len(found.items)} images used", file=sys.stderr)
