"""How a labels file is read (its columns, a path template, its encoding): the options that
``train generator`` (through a family's :func:`posterforge.family.labelled_options`) and ``eval``
(as :class:`~posterforge.jobs.evaluate.EvalJob`'s fields) share, declared once here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import about, field_help


@dataclass(frozen=True, kw_only=True)
class LabelsReading:
    """The labels file's columns, path template and encoding (the defaults read a
    ``path,labels`` CSV in UTF-8). A job that reads labelled images inherits these fields."""

    label_column: str = about(
        "Column of the labels file with the labels (default: the vocabulary's noun, e.g. "
        "genres or genre, then labels or label; any case).",
        "",
    )
    path_column: str = about("Column with the image paths (default: path; any case).", "")
    path_template: str = about(
        "Make each image path from its row instead: columns in braces, e.g. '{imdbId}.jpg' "
        "(relative to --data).",
        "",
    )
    encoding: str = about("Text encoding of the labels file (default: utf-8; e.g. latin-1).",
                          "utf-8")  # fmt: skip

    def __post_init__(self) -> None:
        self.labels_format()  # an unknown encoding or a broken template: one line, now

    def labels_format(self) -> Any:
        """These fields as the reader's :class:`~posterforge.training.labels_file.LabelsFormat`."""
        from posterforge.training.labels_file import LabelsFormat

        try:
            return LabelsFormat(**reading_values(self))
        except ValueError as e:  # the message names the option (--encoding, --path-template)
            raise PosterforgeError(str(e)) from None


FIELDS: tuple[dataclasses.Field, ...] = dataclasses.fields(LabelsReading)


def reading_values(values: Any) -> dict[str, str]:
    """The labels-reading fields of a job (or a mapping), by name."""
    get = values.get if isinstance(values, dict) else lambda k, d: getattr(values, k, d)
    return {f.name: get(f.name, f.default) or f.default for f in FIELDS}


def reading_help() -> dict[str, str]:
    """Each field's one-line help, by name (for the options a family declares)."""
    return {f.name: field_help(f) for f in FIELDS}
