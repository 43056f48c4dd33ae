"""Reading a labels file (CSV or JSON lines) into rows of ``(line, path, labels)``.

What :mod:`posterforge.training.labelled` builds its labelled images from. A file of someone
else's making (``MovieGenre.csv``: latin-1, ``imdbId,Imdb Link,Title,IMDB Score,Genre,Poster``)
is read as it is, described by a :class:`LabelsFormat`:

* ``label_column`` / ``path_column``: which columns hold the labels and the image path (header
  names in any case; by default ``<noun>s``, ``<noun>``, ``labels`` or ``label``, and ``path``);
* ``path_template``: the image path built from the row instead (``"{imdbId}.jpg"``: column names
  in braces, any case, with an optional format spec such as ``{imdbId:0>7}``); it must stay
  inside the data folder;
* ``encoding``: the file's text encoding (``utf-8`` by default, a byte-order mark is skipped).

A CSV row is one physical line: a line whose quoted field is not closed on it is reported as
an unclosed quote at that line and skipped, so one stray ``"`` never swallows the rows after it.
A file that is not in its encoding is one error naming the file and the line. The file is read
in bounded memory: a line longer than ``MAX_LINE`` characters is that row's error (a header that
long, the file's), skipped without being held whole; a field over the csv module's limit is the
row's error too.
"""

from __future__ import annotations

import codecs
import csv
import json
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from posterforge.errors import PosterforgeError
from posterforge.training.text_lines import check_encoding, read_lines

# why a row is dropped (the keys of LabelledData.dropped); the labelled module adds its own
QUOTE, MALFORMED, OUTSIDE, LONG = "quote", "malformed", "outside", "long"
MAX_LINE = 1 << 20  # characters in one line (a row is a few hundred; a field, csv's 131,072)


@dataclass(frozen=True)
class LabelsFormat:
    """How to read a labels file (see the module docstring); the defaults read our own format."""

    path_column: str = ""
    label_column: str = ""
    path_template: str = ""
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {self.encoding!r} (--encoding)") from None
        if self.path_template:
            Template(self.path_template)  # a syntax error is a recipe error, before any work


@dataclass(frozen=True)
class Row:
    """One data row: ``path`` as written (or built by the template) and the raw ``labels`` value
    (a string, a list, or None when the row has none); ``error`` ``(reason, message)`` when the
    row cannot be used at all."""

    line: int
    path: str | None = None
    labels: object = None
    error: tuple[str, str] | None = None


class Template:
    """A ``--path-template`` such as ``{imdbId}.jpg``: literal text and row fields by column name
    (any case), each with an optional format spec."""

    def __init__(self, template: str):
        self.text = template
        flag = f"--path-template {template!r}"
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as e:
            raise ValueError(f"{flag}: {e}") from None
        self.parts: list[tuple[str, str | None, str]] = []
        for literal, field, spec, conversion in parts:
            if field is not None and (not field.strip() or conversion):
                raise ValueError(f"{flag}: name a column in braces, e.g. '{{imdbId}}.jpg'")
            self.parts.append((literal, field.strip() if field is not None else None, spec or ""))
        if not self.fields:
            raise ValueError(f"{flag} names no column: use {{column}}, e.g. '{{imdbId}}.jpg'")
        sample = "".join(lit + ("x" if f is not None else "") for lit, f, _ in self.parts)
        if escapes(sample) or sample.startswith("~"):
            raise ValueError(
                f"{flag}: the path must stay inside the data folder (no leading / or ~, no ..)"
            )

    @property
    def fields(self) -> list[str]:
        return [f for _, f, _ in self.parts if f is not None]

    def check(self, columns: Sequence[str], where: str) -> None:
        """Refuse a field that is not one of ``columns`` (the header as written)."""
        have = {c.strip().lower() for c in columns}
        for name in self.fields:
            if name.lower() not in have:
                raise PosterforgeError(
                    f"--path-template {self.text!r}: no column {name!r} in {where} "
                    f"(columns: {', '.join(columns)})"
                )

    def render(self, row: dict[str, object]) -> str:
        """The path for ``row`` (keys lower-case); raises ``ValueError`` with the reason."""
        out = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is None:
                continue
            value = row.get(field.lower())
            if value is None or not str(value).strip():
                raise ValueError(f"no {field} for --path-template {self.text!r}")
            try:
                out.append(format(str(value).strip(), spec))
            except ValueError as e:
                raise ValueError(f"--path-template {self.text!r}: {e}") from None
        return "".join(out)


def escapes(path: str) -> bool:
    """Whether ``path`` leaves the folder it is relative to (absolute, or through ``..``)."""
    p = PurePath(path)
    return p.is_absolute() or bool(p.drive) or path.startswith(("/", "\\")) or ".." in p.parts


def read_rows(path: Path, label_columns: Sequence[str], fmt: LabelsFormat) -> Iterator[Row]:
    """The data rows of a labels file, CSV or (``.jsonl``, ``.ndjson``) JSON lines.
    ``label_columns``: the default names of the labels column, most specific first. A header
    without the columns it needs, a template naming an unknown column or a file not in its
    encoding raise :class:`PosterforgeError` (one line) before the first row."""
    check_encoding(path, fmt.encoding)
    lines = read_lines(path, fmt.encoding, MAX_LINE)
    template = Template(fmt.path_template) if fmt.path_template else None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _jsonl_rows(lines, label_columns, fmt, template)
    return _csv_rows(path, lines, label_columns, fmt, template)


def _too_long(number: int) -> Row:
    return Row(number, error=(LONG, f"line longer than {MAX_LINE:,} characters, skipped"))


def _split(line: str) -> list[str] | str:
    """One physical line as CSV fields, or the reason it is not one (an unclosed quote)."""
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            return "unclosed quote: a quoted field starts on this line and does not end on it"
    try:
        return next(csv.reader([line]), [])  # lenient, as csv reads by default
    except csv.Error as e:
        return f"not a CSV row ({e})"


def _pick(columns: dict[str, str], wanted: str, defaults: Sequence[str]) -> str | None:
    """The key (lower-case) of the column named ``wanted`` or else of the first default."""
    if wanted:
        return wanted.strip().lower() if wanted.strip().lower() in columns else None
    return next((c for c in defaults if c in columns), None)


def _csv_rows(
    path: Path,
    lines: Iterator[tuple[int, str | None]],
    label_columns: Sequence[str],
    fmt: LabelsFormat,
    template: Template | None,
) -> Iterator[Row]:
    header = next(((n, ln) for n, ln in lines if ln is None or ln.strip()), None)
    if header is None:
        raise PosterforgeError(f"{path}: the labels file is empty (a header line comes first)")
    if header[1] is None:
        raise PosterforgeError(f"{path}:{header[0]}: header: longer than {MAX_LINE:,} characters")
    fields = _split(header[1])
    if isinstance(fields, str):
        raise PosterforgeError(f"{path}:{header[0]}: header: {fields}")
    names = [f.strip() for f in fields]
    keys = [n.lower() for n in names]
    columns = {k: n for k, n in zip(keys, names, strict=True)}
    shown = ", ".join(names)
    label_key = _pick(columns, fmt.label_column, label_columns)
    if label_key is None and not fmt.label_column and len(keys) == 2 and "path" in keys:
        label_key = next(k for k in keys if k != "path")  # path + one column
    path_key = None if template else _pick(columns, fmt.path_column, ("path",))
    noun_col = label_columns[0]
    if fmt.label_column and label_key is None:
        raise PosterforgeError(
            f"{path}: no column {fmt.label_column!r} (--label-column); columns: {shown}"
        )
    if fmt.path_column and not template and path_key is None:
        raise PosterforgeError(
            f"{path}: no column {fmt.path_column!r} (--path-column); columns: {shown}"
        )
    if label_key is None and path_key is None and not template:
        raise PosterforgeError(
            f"{path}: a labels CSV needs a header with path and {noun_col} columns "
            f"(columns: {shown}): name them with --path-column and --label-column"
        )
    if label_key is None:
        raise PosterforgeError(
            f"{path}: no {noun_col} column (columns: {shown}): name it with --label-column"
        )
    if path_key is None and template is None:
        raise PosterforgeError(
            f"{path}: no path column (columns: {shown}): name it with --path-column, or build "
            "paths from the row with --path-template, e.g. '{imdbId}.jpg'"
        )
    if template is not None:
        template.check(names, path.name)
    for number, line in lines:
        if line is None:
            yield _too_long(number)
            continue
        if not line.strip():
            continue
        values = _split(line)
        if isinstance(values, str):
            reason = QUOTE if values.startswith("unclosed quote") else MALFORMED
            yield Row(number, error=(reason, values))
            continue
        row = dict(zip(keys, values, strict=False))  # a short row lacks its last columns
        yield _row(number, row, path_key, label_key, template)


def _row(
    number: int,
    row: dict[str, object],
    path_key: str | None,
    label_key: str | None,
    template: Template | None,
) -> Row:
    labels = row.get(label_key) if label_key else None
    if template is None:
        rel = row.get(path_key) if path_key else None
        return Row(number, rel if isinstance(rel, str) else None, labels)
    try:
        rel = template.render(row)
    except ValueError as e:
        return Row(number, error=(MALFORMED, str(e)))
    if escapes(rel):
        return Row(number, error=(OUTSIDE, f"path {rel!r} is outside the data folder"))
    return Row(number, rel, labels)


def _jsonl_rows(
    lines: Iterator[tuple[int, str | None]],
    label_columns: Sequence[str],
    fmt: LabelsFormat,
    template: Template | None,
) -> Iterator[Row]:
    for number, line in lines:
        if line is None:
            yield _too_long(number)
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
        except ValueError as e:
            yield Row(number, error=(MALFORMED, f"not a JSON object ({e})"))
            continue
        row = {str(k).strip().lower(): v for k, v in obj.items()}
        label_key = _pick(row, fmt.label_column, label_columns)
        path_key = None if template else _pick(row, fmt.path_column, ("path",))
        if template is None and path_key is None:
            yield Row(number, error=(MALFORMED, "no path"))
            continue
        yield _row(number, row, path_key, label_key, template)
