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
:func:`posterforge.family.labelled_options` offers them on the command line. The reading is
:mod:`.labelled_data`'s and the balancing :mod:`.balance`'s; their names are importable from here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterforge.errors import PosterforgeError
from posterforge.labels import LabelSet
from posterforge.training.balance import BALANCE_MODES, balance, counts_table
from posterforge.training.labelled_data import (
    NO_IMAGE,
    NO_LABELS,
    REASONS,
    UNKNOWN,
    LabelledData,
    LabelledImage,
    label_counts,
    read_labelled,
    vocabulary_from,
)
from posterforge.training.labels_file import LabelsFormat

if TYPE_CHECKING:
    from posterforge.context import Context
    from posterforge.training.data import LabelledImageStream

MIN_USABLE = 0.1  # refuse a labels file of which fewer rows are usable (min_usable)

__all__ = [
    "BALANCE_MODES",
    "DATA_REPORT",
    "MIN_USABLE",
    "NO_IMAGE",
    "NO_LABELS",
    "REASONS",
    "UNKNOWN",
    "LabelledData",
    "LabelledImage",
    "LabelledRecipe",
    "balance",
    "check_usable",
    "counts_table",
    "label_counts",
    "labelled_stream",
    "read_labelled",
    "report",
    "report_text",
    "vocabulary_from",
]


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
      read (:class:`~posterforge.training.labels_file.LabelsFormat`);
    - ``eval_images``: images of each label held out (seeded, never trained on) for the
      metrics every ``train.eval_every`` steps (0: none; else at least 10).
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
    eval_images: int = 0

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
        if not isinstance(self.eval_images, int) or self.eval_images < 0:
            raise ValueError(f"eval_images must be a whole number, 0 or more: {self.eval_images!r}")
        self.format()  # the encoding and the path template are checked now, before any work

    def format(self) -> LabelsFormat:
        return LabelsFormat(self.path_column, self.label_column, self.path_template, self.encoding)

    def vocabulary(self, ctx: Context) -> LabelSet:
        """The labels preset ``labels`` of ``ctx``'s plugins, or its spellings over
        ``label_names`` when set."""
        from posterforge import presets

        base = presets.labels(self.labels, ctx.host)
        if self.label_names is None:
            return base
        return LabelSet.from_dict(base.as_dict(), names=self.label_names)

    def stream(
        self,
        inputs: dict[str, Path],
        batch_size: int,
        image_size: tuple[int, int],
        *,
        ctx: Context,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> LabelledImageStream:
        """:func:`labelled_stream` as these keys say (``ctx``: whose labels presets)."""
        shard = {"seed": seed, "rank": rank, "world_size": world_size}
        labels = self.vocabulary(ctx)
        return labelled_stream(inputs, self, labels, batch_size, image_size, **shard)


def labelled_stream(
    inputs: dict[str, Path],
    recipe: LabelledRecipe,
    labels: LabelSet,
    batch_size: int,
    image_size: tuple[int, int],
    *,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> LabelledImageStream:
    """A conditional family's training data: ``inputs["data"]`` (a folder) labelled by
    ``inputs["labels"]`` (CSV/JSONL read as ``recipe.format()`` says, optional: else
    sub-folders) in the vocabulary ``labels``, balanced as ``recipe`` says, as a
    :class:`~posterforge.training.data.LabelledImageStream` of ``image_size`` (W, H) whose
    ``summary()`` holds the counts (``label_counts``: images per label, after balancing). Rank 0
    prints unusable rows, the summary and the per-label table.

    With ``recipe.labels_from_data`` (and no ``label_names`` yet) the vocabulary comes from the
    data (see :func:`read_labelled`), and the stream's ``recipe_updates()`` holds its names as
    ``label_names``, for the run to store. A labels file of which less than
    ``recipe.min_usable`` (a fraction) of the rows are usable is refused (a wrong column or
    template, most likely)."""
    from posterforge.training.data import LabelledImageStream

    from_data = recipe.labels_from_data and recipe.label_names is None
    found = read_labelled(
        inputs["data"], labels, inputs.get("labels"), recipe.format(), from_data=from_data
    )
    labels = found.labels
    train, held = _held_out(found, recipe.eval_images, seed, inputs["data"])
    items = balance(train, len(labels), recipe.balance, seed, recipe.balance_cap)
    if rank == 0:
        report(found, items)
    check_usable(found, recipe.min_usable)
    used = LabelledData(items, labels)
    summary: dict[str, Any] = {
        "images_found": len(found.items),
        "images_used": len(items),
        "balance": recipe.balance,
        "folder": Path(inputs["data"]).name,
    }
    if found.source is not None:
        summary |= {"rows_read": found.rows, "rows_dropped": len(found.dropped)}
    summary["label_counts"] = dict(zip(labels.names, used.counts(), strict=True))
    kept = LabelledData(held, labels)
    if held:
        summary["held_out"] = {
            "images": [_relative(it.path, Path(inputs["data"])) for it in held],
            "label_counts": dict(zip(labels.names, kept.counts(), strict=True)),
        }
    stream = LabelledImageStream(
        [it.path for it in items],
        used.multi_hot(),
        batch_size,
        image_size,
        fit=recipe.fit,
        seed=seed,
        rank=rank,
        world_size=world_size,
        summary=summary,
        recipe_updates={"label_names": list(labels.names)} if from_data else None,
        report=report_text(found) if found.problems else None,
    )
    if held:
        from posterforge.training.holdout import load_held_out

        paths, fit = [it.path for it in held], recipe.fit
        stream.hold_out(paths, kept.multi_hot(), lambda: load_held_out(paths, image_size, fit))
    return stream


def _relative(path: Path, data: Path) -> str:
    try:
        return os.fspath(path.relative_to(data))
    except ValueError:
        return path.name


def _held_out(
    found: LabelledData, n: int, seed: int, data: Path
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """The images to train on and those held out for the metrics (``n`` of each label)."""
    from posterforge.training.holdout import split_labelled_held_out

    items = found.items
    rows = [it.labels for it in items]
    train, held = split_labelled_held_out(rows, found.labels.names, n, seed, f"--data {data}")
    return [items[i] for i in train], [items[i] for i in held]


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


DATA_REPORT = "data-report.txt"  # the run folder's full list of the data's problems
SHOWN = 20  # problems printed; the rest are in the full list


def report(
    found: LabelledData,
    items: Sequence[LabelledImage],
    shown: int = SHOWN,
    full_list: str = f"the run folder's {DATA_REPORT}",
    table: bool = True,
) -> None:
    """Unusable label rows (with line numbers; past ``shown``, where the ``full_list`` is), the
    rows read, used and dropped, label names outside the vocabulary, and (with ``table``) the
    per-label counts, on stderr."""
    for problem in found.problems[:shown]:
        print(f"posterforge: warning: {problem}", file=sys.stderr)
    if len(found.problems) > shown:
        more = len(found.problems) - shown
        print(f"posterforge: warning: ... and {more} more (all in {full_list})", file=sys.stderr)
    for line in (found.summary_line(), found.unknown_line()):
        if line is not None:
            print(line, file=sys.stderr)
    if not table:
        return
    before, after = found.counts(), label_counts(items, len(found.labels))
    print(counts_table(found.labels, before, after), file=sys.stderr)
    print(f"{len(items)} of {len(found.items)} images used", file=sys.stderr)


def report_text(found: LabelledData) -> str:
    """Every problem of the data, one a line, then the summary lines: the full list."""
    lines = [*found.problems, found.summary_line(), found.unknown_line()]
    return "".join(f"{line}\n" for line in lines if line is not None)
