"""Strict CSV import validation shared by every master-data import (ledger, BOM, routing): table parsing.

A data import once failed silently because a location code held an invisible space; this module exists so
that can never happen again. It reads a UTF-8 CSV whose first row must be exactly the expected header,
checks every field of every row, collects *all* problems of the file, and raises one ``CsvImportError``
listing them. Callers import nothing when it raises (all or nothing).

API::

    from mes_common.csv_cells import Boolean, Choice, Code, Date, Number, Text
    from mes_common.csv_report import CsvImportError
    from mes_common.csv_validation import parse_csv

    COLUMNS = (Code("code"), Text("name"), Choice("kind", ("stores", "wip")))
    table = parse_csv(path, COLUMNS, key=("code",))      # never raises for bad content
    for row in table.rows:                               # only rows without any problem
        if row["code"] in existing:                      # caller's own checks, same report
            table.add_issue(row.line, "code", f"location {row['code']} already exists")
    table.raise_if_issues()                              # CsvImportError listing every problem
    ... write table.rows ...

    rows = read_csv(path, COLUMNS, key=("code",))        # parse_csv + raise_if_issues in one call

The column types and the character checks live in ``mes_common.csv_cells``, the issue report in
``mes_common.csv_report``. Here: the file must be UTF-8 (a byte-order mark at the very
start, as Excel writes it, is skipped; anywhere else it is refused like any invisible character) and its header
exactly the expected column names, separated by commas, semicolons or tabs (the delimiter is the one the
header is written with); every field (and the header) is checked for characters that hide or deceive before
it is parsed, then for leading/trailing spaces and empty required fields (an empty optional field parses to
``None``). A row's key (``key=`` column names) must be unique within the file. Only rows without any problem
reach ``CsvTable.rows``.

Issues name the file, the row (the file's line number where the record starts; the header is row 1), the
column and, for a bad character, its code point, Unicode name and 1-based position in the field.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mes_common.csv_cells import Column, FieldError, describe_char, hidden_chars
from mes_common.csv_report import CsvImportError, CsvIssue


@dataclass(frozen=True)
class CsvRow(Mapping[str, object]):
    """A valid row: typed values by column name, and the file line number where it starts."""

    line: int
    data: Mapping[str, object]  # not ``values``: that is Mapping's method

    def __getitem__(self, key: str) -> object:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


MAX_ISSUES = 10_000


@dataclass
class CsvTable:
    """Result of ``parse_csv``: the rows without problems and every issue found so far."""

    file: str
    columns: tuple[Column, ...]
    rows: list[CsvRow] = field(default_factory=list)
    issues: list[CsvIssue] = field(default_factory=list)

    omitted: int = 0  # issues beyond ``MAX_ISSUES``: counted, not kept (a large bad file stays small in memory)

    def add_issue(self, row: int, column: str, message: str) -> None:
        """Record a problem found by the caller (unknown code, existing record...) in the same report."""
        if len(self.issues) >= MAX_ISSUES:
            self.omitted += 1
            return
        self.issues.append(CsvIssue(row, column, message, self.file))

    def raise_if_issues(self) -> None:
        if self.issues:
            raise CsvImportError(self.file, self.issues, omitted=self.omitted)


def _lines(stream: BinaryIO, table: CsvTable, progress: Callable[[int], None] | None) -> Iterator[str]:
    """The file's lines as text, each decoded on its own (a line that is not UTF-8 is reported with its number
    and byte offset, and read with U+FFFD in place of the bad bytes); a byte-order mark at the very start, as
    Excel writes "CSV UTF-8", is not part of the data."""
    offset = 0
    for number, raw in enumerate(stream, 1):
        if progress is not None:
            progress(len(raw))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.end].hex(" ").upper()
            table.add_issue(number, "", f"not UTF-8: byte(s) 0x{bad} at byte offset {offset + exc.start}")
            text = raw.decode("utf-8", errors="replace")
        if number == 1:
            text = text.removeprefix("\ufeff")
        offset += len(raw)
        yield text


def iter_csv(
    stream: BinaryIO,
    columns: Sequence[Column],
    table: CsvTable,
    *,
    key: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> Iterator[CsvRow]:
    """The valid rows of the CSV file ``stream`` (binary), read as they come: problems go to ``table``'s issues,
    never raised. ``key``: columns whose combined values must be unique in the file (remembered per row: a
    streaming caller with a large file leaves it empty and checks uniqueness itself). ``progress`` is called
    with the number of bytes of each line read."""
    lines = _lines(stream, table, progress)
    first = next(lines, None)
    expected = [c.name for c in columns]
    if first is None:
        table.add_issue(1, "", f"empty file (expected header {','.join(expected)})")
        return
    delimiter = detect_delimiter(first, expected)
    reader = csv.reader(itertools.chain((first,), lines), strict=True, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        table.add_issue(1, "", f"unreadable header: {exc}")
        return
    if header is None:
        table.add_issue(1, "", f"empty file (expected header {','.join(expected)})")
        return
    header_ok = _check_header(header, expected, table, delimiter)
    seen: dict[tuple[object, ...], int] = {}
    end_line = reader.line_num
    while True:
        start = end_line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            table.add_issue(reader.line_num, "", f"malformed CSV: {exc}")
            break
        end_line = reader.line_num
        if not record:
            continue  # blank line
        if not header_ok:
            continue
        row = _parse_record(record, start, columns, table)
        if row is None:
            continue
        if key:
            key_value = tuple(row[k] for k in key)
            if key_value in seen:
                shown = ", ".join(f"{k}={v}" for k, v in zip(key, key_value, strict=True))
                table.add_issue(start, key[0], f"duplicate key ({shown}), first on row {seen[key_value]}")
                continue
            seen[key_value] = start
        yield row


def parse_csv(
    source: str | Path | bytes,
    columns: Sequence[Column],
    *,
    key: Sequence[str] = (),
    name: str | None = None,
) -> CsvTable:
    """Read and validate a CSV file (a path, or its bytes) against ``columns``; never raises for bad content.

    ``key`` names the columns whose combined values must be unique in the file. ``name`` is how the file is
    named in issues (default: the path's file name).
    """
    if isinstance(source, bytes):
        stream: BinaryIO = io.BytesIO(source)
        label = name or "<csv>"
    else:
        path = Path(source)
        stream, label = path.open("rb"), name or path.name
    table = CsvTable(label, tuple(columns))
    with stream:
        table.rows.extend(iter_csv(stream, columns, table, key=key))
    return table


DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def detect_delimiter(text: str, expected: Sequence[str]) -> str:
    """The delimiter of a file whose first line (of ``text``) is ``expected``'s names (optional columns may
    follow): a comma, or a semicolon or tab as spreadsheets in many locales write CSV; a comma when none fits
    (the header check then names what the first line holds)."""
    first = text[: text.find("\n") if "\n" in text[:10_000] else 10_000].rstrip("\r")
    for delimiter in DELIMITERS:
        if first.split(delimiter)[: len(expected)] == list(expected):
            return delimiter
    return ","


def _check_header(header: list[str], expected: list[str], table: CsvTable, delimiter: str = ",") -> bool:
    ok = True
    for index, cell in enumerate(header):
        for pos, ch in hidden_chars(cell):
            table.add_issue(1, cell, f"header: {describe_char(ch)} at position {pos} of column {index + 1}")
            ok = False
    if header != expected:
        if ok:
            shown = delimiter.join(header)
            others = [f"{name}s" for sep, name in DELIMITERS.items() if sep != delimiter and sep in shown]
            hint = (f" (separated by {' and '.join(others)}: such a file is read only when its header names "
                    "exactly the expected columns)" if others and len(header) == 1 else "")
            table.add_issue(1, "", f"header is {shown!r}, expected exactly {','.join(expected)!r}{hint}")
        ok = False
    return ok


def _parse_record(record: list[str], line: int, columns: Sequence[Column], table: CsvTable) -> CsvRow | None:
    if len(record) != len(columns):
        table.add_issue(line, "", f"expected {len(columns)} fields, found {len(record)}")
        return None
    values: dict[str, object] = {}
    ok = True
    for column, raw in zip(columns, record, strict=True):
        problems = column.check_chars(raw)
        if not problems:
            if raw.strip(" ") == "" and raw != "":
                problems = ["blank (only spaces)"]
            elif raw != raw.strip(" "):
                problems = ["leading space" if raw.startswith(" ") else "trailing space"]
        if problems:
            for message in problems:
                table.add_issue(line, column.name, message)
            ok = False
            continue
        if raw == "":
            if column.required:
                table.add_issue(line, column.name, "required, empty")
                ok = False
            values[column.name] = None
            continue
        try:
            values[column.name] = column.parse(raw)
        except FieldError as exc:
            table.add_issue(line, column.name, str(exc))
            ok = False
    return CsvRow(line, values) if ok else None


def read_csv(
    source: str | Path | bytes,
    columns: Sequence[Column],
    *,
    key: Sequence[str] = (),
    name: str | None = None,
) -> list[CsvRow]:
    """``parse_csv`` then ``raise_if_issues``: the valid rows, or one ``CsvImportError`` listing every problem."""
    table = parse_csv(source, columns, key=key, name=name)
    table.raise_if_issues()
    return table.rows
