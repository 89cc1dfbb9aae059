"""Readers for tabular text data: CSV, TSV, JSONL and pattern-matched text lines.

Every reader returns `Examples`: a dict of columns (`{field: list}`) that also carries
the source and how many rows were skipped. A bad row (missing column, empty text,
unknown label, invalid UTF-8 or JSON) raises `DataError` naming the file and line,
unless `skip_bad=True`, which skips it and counts it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

FORMATS = ("csv", "tsv", "jsonl", "lines")


class DataError(ValueError):
    """Bad input data; the message names the file and line (or field)."""


class Examples(dict):
    """Columns of raw examples, `{field: list}`, with where they came from.

    Attributes:
        source: the file (or dataset) read.
        skipped: rows skipped as bad (with `skip_bad=True`).
        lines: the line number of each kept row in `source` (for error messages).
        file_columns: the columns the file has (header names, JSON keys), if known.
    """

    def __init__(self, columns=None, source="", skipped=0, lines=None, file_columns=None):
        super().__init__(columns or {})
        self.source = str(source)
        self.skipped = skipped
        self.lines = lines
        self.file_columns = file_columns

    def __len__(self):
        return len(next(iter(self.values()))) if super().__len__() else 0

    @property
    def num_examples(self):
        return len(self)

    def take(self, indices):
        """A new `Examples` with the rows at `indices`."""
        indices = list(indices)
        return Examples(
            {k: [v[i] for i in indices] for k, v in self.items()},
            source=self.source,
            skipped=self.skipped,
            lines=[self.lines[i] for i in indices] if self.lines else None,
            file_columns=self.file_columns,
        )

    def head(self, n):
        """The first `n` rows (all of them when `n` is None)."""
        return self if n is None or n >= len(self) else self.take(range(n))


def where(examples, index):
    """`source:line` of row `index` of `examples` (or `source: row N`)."""
    source = getattr(examples, "source", "") or "(in memory)"
    lines = getattr(examples, "lines", None)
    if lines and index < len(lines):
        return f"{source}:{lines[index]}"
    return f"{source}: row {index + 1}"


def check_targets(head, examples, what):
    """Raise `DataError` unless `examples` hold `head`'s target fields (labels), naming
    the columns the file has and the option that picks the label column."""
    missing = [f for f in head.target_fields if f not in examples]
    if not missing:
        return
    source = getattr(examples, "source", "") or "(in memory)"
    found = getattr(examples, "file_columns", None)
    found = f"the file's columns: {', '.join(map(repr, found))}; " if found else ""
    raise DataError(f"{source}:1: no {missing[0]} column to {what} ({found}name it with "
                    f"--label-column COLUMN, Python: label_column=)")


def check_text_columns(columns, examples=None, words=True):
    """Raise `DataError` naming the row of the first value of `columns` that is not a
    string (or, with `words`, a list of strings: the words of a token-level head)."""
    sequences = (list, tuple, np.ndarray) if words else ()
    for field, values in columns.items():
        for index, value in enumerate(values):
            ok = isinstance(value, (str, bytes)) or (
                isinstance(value, sequences) and all(isinstance(v, (str, bytes)) for v in value))
            if not ok:
                raise DataError(
                    f"{where(examples, index)}: {field!r} is "
                    f"{'null' if value is None else type(value).__name__ + ' ' + repr(value)[:40]}"
                    f", not text (give a string)")


def read_inputs(path, fields, stdin=None):
    """Read prediction inputs: JSONL, one object (or a bare string, for `text`) per line.

    Args:
        path: the file, or `-` for `stdin`.
        fields: the head's input fields; each line must have them all, as strings.
        stdin: the stream `-` reads (default `sys.stdin`).

    Returns:
        `Examples` with one column per field, and the line of each row.

    Raises:
        DataError: naming `path:line` (invalid UTF-8 or JSON, a missing field, a value
            that is not a string), or the path (missing, a folder).
    """
    if path != "-":
        if Path(path).is_dir():
            raise DataError(f"{path}: is a folder (give a JSONL file, or - for stdin)")
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file")
    columns = {field: [] for field in fields}
    lines = []
    if path == "-":
        stream = stdin or sys.stdin
        stream = getattr(stream, "buffer", None) or stream
    else:
        stream = open(path, "rb")
    with contextlib.ExitStack() as stack:
        if stream is not stdin and path != "-":
            stack.enter_context(stream)
        for number, raw in enumerate(stream, start=1):
            if isinstance(raw, bytes):
                if number == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}:{number}: not valid UTF-8 (byte {e.start + 1}: "
                                    f"{raw[e.start:e.start + 1]!r}; save the file as UTF-8)"
                                    ) from None
            else:
                text = raw.removeprefix("\ufeff") if number == 1 else raw
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: invalid JSON ({e.msg})") from None
            if isinstance(row, str):
                row = {fields[0]: row}
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object or string")
            for field in fields:
                if field not in row:
                    raise DataError(f"{path}:{number}: missing field {field!r}")
                columns[field].append(row[field])
            lines.append(number)
    examples = Examples(columns, source=path, lines=lines)
    check_text_columns(columns, examples)
    return examples


def guess_format(path):
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix, "lines")


def read_table(
    path,
    columns,
    *,
    format=None,
    skip_bad=False,
    required=None,
    allowed=None,
    list_fields=(),
    list_separator="|",
    line_pattern=None,
    header=True,
):
    """Read a CSV, TSV, JSONL or pattern-matched text file into columns.

    Args:
        path: the file.
        columns: `{field: column}`: which column (CSV/TSV header name, JSON key, or
            named group of `line_pattern`) fills each field; a tuple of names takes the
            first one present. A TSV/CSV without a header (`header=False`) takes
            column indices (`"0"`, `"1"`).
        format: `csv`, `tsv`, `jsonl` or `lines`; guessed from the suffix if omitted.
        skip_bad: skip and count bad rows instead of raising.
        required: fields that must be present and non-empty (default: all of them).
        allowed: `{field: set}`: values a field may take (e.g. known labels).
        list_fields: fields holding lists (multi-label): JSON lists, or text split on
            `list_separator`.
        list_separator: separator of list fields in CSV/TSV/lines.
        line_pattern: for `lines`: a regular expression with named groups, matched
            against each line (e.g. TREC's `(?P<label>\\w+):\\S+ (?P<text>.*)`).
        header: CSV/TSV files start with a header row.

    Returns:
        `Examples`.

    Example:
    ```python
    examples = read_table("train.tsv", {"text": "sentence", "label": "label"})
    ```
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    format = format or guess_format(path)
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r}; use one of {', '.join(FORMATS)}")
    columns = {f: (c,) if isinstance(c, str) else tuple(c) for f, c in columns.items()}
    required = set(columns if required is None else required)
    allowed = allowed or {}
    out = {field: [] for field in columns}
    lines = []
    skipped = 0

    def bad(line, message):
        nonlocal skipped
        if not skip_bad:
            raise DataError(f"{path}:{line}: {message}")
        skipped += 1

    file_columns = []
    for line, row in _rows(path, format, columns, required, line_pattern, header, bad):
        if len(file_columns) < 50:
            file_columns.extend(k for k in row if k not in file_columns)
        record = {}
        problem = None
        for field, candidates in columns.items():
            column = next((c for c in candidates if row.get(c) is not None), candidates[0])
            value = row.get(column)
            if value is not None and _has_surrogates(value):
                problem = f"column {column!r} is not valid UTF-8"
                break
            if field in list_fields:
                value = _as_list(value, list_separator)
            elif value is not None and not isinstance(value, str):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    # A JSON list, object or boolean is no text (str() would make
                    # "['a', 'b']" of it); numbers are fine as labels ("1").
                    problem = (f"column {column!r} is a JSON {type(value).__name__} "
                               f"({json.dumps(value)[:40]}), not a string")
                    break
                value = str(value)
            empty = value is None or (not value.strip() if isinstance(value, str) else not value)
            if empty and field in required:
                problem = (
                    f"missing column {column!r}" if value is None else f"empty {column!r}"
                )
                break
            if field in allowed and value is not None:
                values = value if isinstance(value, list) else [value]
                unknown = [v for v in values if v not in allowed[field]]
                if unknown:
                    problem = (
                        f"unknown {field} {unknown[0]!r} in column {column!r}; "
                        f"known: {sorted(allowed[field])}"
                    )
                    break
            record[field] = value
        if problem:
            bad(line, problem)
            continue
        for field in columns:
            out[field].append(record[field])
        lines.append(line)
    if skipped:
        print(f"{path}: skipped {skipped} bad row(s)", file=sys.stderr)
    if not lines:
        raise DataError(f"{path}: no usable rows")
    for field in list(out):
        present = [v is not None for v in out[field]]
        if not any(present):
            del out[field]  # an optional column absent from the whole file
        elif not all(present):
            line = lines[present.index(False)]
            raise DataError(f"{path}:{line}: missing {field} (other rows have it)")
    return Examples(out, source=path, skipped=skipped, lines=lines, file_columns=file_columns)


def _csv_problem(error):
    message = str(error)
    if "field larger than field limit" in message:
        return (f"a field is longer than {csv.field_size_limit():,} characters (is the file "
                "really this format? split the text, or --skip-bad to skip the row)")
    return f"unreadable row ({message})"


def _next_row(reader, path, bad):
    try:
        return next(reader, None)
    except csv.Error as e:
        raise DataError(f"{path}:1: {_csv_problem(e)}") from None


def _has_surrogates(value):
    if isinstance(value, list):
        return any(_has_surrogates(v) for v in value)
    return isinstance(value, str) and any("\udc80" <= c <= "\udcff" for c in value)


def _as_list(value, separator):
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(separator) if part.strip()]


def _rows(path, format, columns, required, line_pattern, header, bad):
    """Yield `(line_number, {column: value})`; structural errors go to `bad`."""
    # surrogateescape keeps undecodable bytes so that the bad row can be named;
    # utf-8-sig drops a byte-order mark (else the first column is "\ufeffsentence").
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        if format == "jsonl":
            for number, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as e:
                    bad(number, f"invalid JSON ({e.msg})")
                    continue
                if not isinstance(row, dict):
                    bad(number, "a JSON line must be an object")
                    continue
                yield number, row
        elif format == "lines":
            if not line_pattern:
                raise DataError(f"{path}: the 'lines' format needs a line_pattern")
            pattern = re.compile(line_pattern)
            for number, text in enumerate(f, start=1):
                text = text.rstrip("\r\n")
                if not text.strip():
                    continue
                match = pattern.fullmatch(text)
                if not match:
                    bad(number, f"line does not match {line_pattern!r}")
                    continue
                yield number, match.groupdict()
        else:
            delimiter = "\t" if format == "tsv" else ","
            # TSV files in the wild (GLUE) carry literal quotes: no quoting for TSV.
            quoting = csv.QUOTE_NONE if format == "tsv" else csv.QUOTE_MINIMAL
            reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
            if header:
                names = _next_row(reader, path, bad)
                if names is None:
                    raise DataError(f"{path}: empty file")
                names = [n.strip() for n in names]
                missing = [
                    c for f, c in columns.items()
                    if f in required and not any(n in names for n in c)
                ]
                if missing:
                    raise DataError(
                        f"{path}:1: header has no column {' or '.join(map(repr, missing[0]))}"
                        f" (columns: {names})"
                    )
            else:
                names = None
            previous = reader.line_num
            while True:
                number = previous + 1
                try:
                    values = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:  # e.g. a field over csv.field_size_limit()
                    previous = reader.line_num
                    bad(number, _csv_problem(e))
                    continue
                previous = reader.line_num
                if not values or all(not v.strip() for v in values):
                    continue
                if names is None:
                    row = {str(i): v for i, v in enumerate(values)}
                else:
                    if len(values) != len(names):
                        bad(number, f"{len(values)} fields, the header has {len(names)}")
                        continue
                    row = dict(zip(names, values))
                yield number, row
