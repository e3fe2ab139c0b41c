"""Strict CSV import validation shared by every master-data import (ledger, BOM, routing).

A data import once failed silently because a location code held an invisible space; this module exists so
that can never happen again. It reads a UTF-8 CSV whose first row must be exactly the expected header,
checks every field of every row, collects *all* problems of the file, and raises one ``CsvImportError``
listing them. Callers import nothing when it raises (all or nothing).

API::

    from mes_common.csv_validation import Boolean, Choice, Code, CsvImportError, Date, Number, Text, parse_csv

    COLUMNS = (Code("code"), Text("name"), Choice("kind", ("stores", "wip")))
    table = parse_csv(path, COLUMNS, key=("code",))      # never raises for bad content
    for row in table.rows:                               # only rows without any problem
        if row["code"] in existing:                      # caller's own checks, same report
            table.add_issue(row.line, "code", f"location {row['code']} already exists")
    table.raise_if_issues()                              # CsvImportError listing every problem
    ... write table.rows ...

    rows = read_csv(path, COLUMNS, key=("code",))        # parse_csv + raise_if_issues in one call

Columns (all take ``required=True``; an empty optional field parses to ``None``):

- ``Code(name, max_length=64)``: identifiers (item, location, work-center codes). Printable ASCII only, no
  spaces: any other character is refused, and Cyrillic/Greek/fullwidth look-alikes of Latin letters are named
  as such ("U+0410 CYRILLIC CAPITAL LETTER A, looks like Latin 'A'").
- ``Text(name, max_length=200)``: free text (names, quality standards). Any printable Unicode, but invisible
  characters and Latin words holding a Cyrillic/Greek look-alike of a Latin letter are refused.
- ``Number(name, minimum=None, positive=False, places=None)``: a plain decimal (``-12.5``; no exponent, no
  thousands separator) parsed to ``Decimal``; ``minimum=Decimal(0)`` refuses negatives.
- ``Integer(name, minimum=None)``: a whole number, parsed to ``int``.
- ``Date(name)``: ``YYYY-MM-DD``, parsed to ``datetime.date``.
- ``Boolean(name)``: ``true`` / ``false`` (any case), parsed to ``bool``.
- ``Choice(name, choices)``: one of a fixed set of lower-case words, parsed to ``str``.

Every field (and the header) is checked for characters that hide or deceive before it is parsed: format
characters (category Cf: U+200B/C/D ZERO WIDTH ..., U+2060 WORD JOINER, U+FEFF, also as a byte-order mark),
spaces other than U+0020 (Zs: U+00A0 NO-BREAK SPACE ...), control characters (Cc: tab, CR, LF inside a
field), line/paragraph separators, private-use and unassigned code points; then for leading/trailing spaces
and empty required fields. A row's key (``key=`` column names) must be unique within the file.

Issues name the file, the row (the file's line number where the record starts; the header is row 1), the
column and, for a bad character, its code point, Unicode name and 1-based position in the field.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from mes_common.errors import DomainError

# How many issues the exception message spells out; all of them stay in ``CsvImportError.issues``.
MESSAGE_ISSUE_LIMIT = 100

_CONTROL_NAMES = {
    0x00: "NULL",
    0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
}
_SUSPICIOUS_CATEGORIES = {"Cf", "Cc", "Zs", "Zl", "Zp", "Co", "Cn", "Cs"}

# Non-Latin letters that render like Latin ones (the usual suspects of a copy-paste from another keyboard
# layout). Written as escapes so this file itself holds no look-alikes.
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic capitals
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H", "\u041e": "O",
    "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X", "\u0405": "S", "\u0406": "I", "\u0408": "J",
    "\u04c0": "I", "\u0423": "Y",
    # Cyrillic small
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y", "\u0445": "x",
    "\u0455": "s", "\u0456": "i", "\u0458": "j", "\u04cf": "l", "\u0501": "d", "\u051b": "q", "\u051d": "w",
    # Greek capitals
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "I", "\u039a": "K",
    "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X",
    # Greek small
    "\u03bf": "o", "\u03bd": "v", "\u03b9": "i", "\u03ba": "k", "\u03c1": "p", "\u03c5": "u",
}  # fmt: skip


def describe_char(ch: str) -> str:
    """``U+00A0 NO-BREAK SPACE``: the code point and its Unicode name (control characters by their alias)."""
    cp = ord(ch)
    name = unicodedata.name(ch, None) or _CONTROL_NAMES.get(cp) or f"<{unicodedata.category(ch)}>"
    return f"U+{cp:04X} {name}"


def lookalike_of(ch: str) -> str | None:
    """The ASCII character ``ch`` is easily mistaken for, or None."""
    if ch in _HOMOGLYPHS:
        return _HOMOGLYPHS[ch]
    if "\uff01" <= ch <= "\uff5e":  # fullwidth ASCII forms
        return chr(ord(ch) - 0xFEE0)
    folded = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in folded if not unicodedata.combining(c))
    if len(base) == 1 and base.isascii() and base.isalnum() and base != ch:
        return base  # accented Latin letter, e.g. U+00C9 -> 'E'
    return None


def hidden_chars(value: str) -> list[tuple[int, str]]:
    """(1-based position, character) of every invisible, control or unusual-space character in ``value``."""
    found = []
    for pos, ch in enumerate(value, start=1):
        if ch == " ":
            continue
        if unicodedata.category(ch) in _SUSPICIOUS_CATEGORIES:
            found.append((pos, ch))
    return found


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script
    return "OTHER"


@dataclass(frozen=True)
class CsvIssue:
    """One problem: where it is (file, row = file line number, header = 1; column) and what it is."""

    row: int
    column: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{self.file}: {where}: {self.message}" if self.file else f"{where}: {self.message}"


class CsvImportError(DomainError):
    """A CSV file refused as a whole; ``issues`` holds every problem found, the message lists them."""

    code = "csv_import_error"

    def __init__(self, file: str, issues: Sequence[CsvIssue]) -> None:
        self.file = file
        # Stable sort: issues of one row stay in column order.
        self.issues = sorted(issues, key=lambda issue: issue.row)
        lines = [f"{file}: {len(self.issues)} problem(s), nothing imported:"]
        lines += [f"  {issue}" for issue in self.issues[:MESSAGE_ISSUE_LIMIT]]
        if len(self.issues) > MESSAGE_ISSUE_LIMIT:
            lines.append(f"  ... and {len(self.issues) - MESSAGE_ISSUE_LIMIT} more")
        super().__init__("\n".join(lines))


class FieldError(ValueError):
    """Raised by ``Column.parse`` with the message of the issue."""


@dataclass(frozen=True)
class Column:
    """One expected column; subclasses parse the text into a typed value."""

    name: str
    required: bool = field(default=True, kw_only=True)

    def check_chars(self, value: str) -> list[str]:
        """Messages for characters this column refuses (before parsing)."""
        messages = []
        for pos, ch in hidden_chars(value):
            messages.append(f"{describe_char(ch)} at position {pos} (invisible or control character)")
        return messages

    def parse(self, value: str) -> object:
        return value


@dataclass(frozen=True)
class Code(Column):
    """An identifier: printable ASCII without spaces, at most ``max_length`` characters."""

    max_length: int = 64

    def check_chars(self, value: str) -> list[str]:
        messages = []
        hidden = {pos for pos, _ in hidden_chars(value)}
        for pos, ch in enumerate(value, start=1):
            if pos in hidden:
                messages.append(f"{describe_char(ch)} at position {pos} (invisible or control character)")
            elif not ch.isascii():
                like = lookalike_of(ch)
                hint = f", looks like Latin '{like}'" if like else ""
                messages.append(f"{describe_char(ch)} at position {pos} (not allowed in a code{hint})")
        return messages

    def parse(self, value: str) -> object:
        if " " in value:
            raise FieldError(f"space inside code {value!r} at position {value.index(' ') + 1}")
        if len(value) > self.max_length:
            raise FieldError(f"code longer than {self.max_length} characters ({len(value)})")
        return value


@dataclass(frozen=True)
class Text(Column):
    """Free text in any script, without invisible characters or Latin words holding Cyrillic/Greek look-alikes."""

    max_length: int = 200

    def check_chars(self, value: str) -> list[str]:
        messages = super().check_chars(value)
        for match in re.finditer(r"\w+", value):
            word = match.group()
            if not any(_script(ch) == "LATIN" for ch in word):
                continue
            # Only letters that pass for Latin ones: "10k\u03a9" or "\u03bcm" are honest Greek, "B\u043elt" is not.
            for offset, ch in enumerate(word):
                if _script(ch) in ("CYRILLIC", "GREEK") and ch in _HOMOGLYPHS:
                    pos = match.start() + offset + 1
                    messages.append(
                        f"{describe_char(ch)} at position {pos} in word {word!r} mixes scripts "
                        f"(looks like Latin '{_HOMOGLYPHS[ch]}')"
                    )
                    break
        return messages

    def parse(self, value: str) -> object:
        if len(value) > self.max_length:
            raise FieldError(f"text longer than {self.max_length} characters ({len(value)})")
        return value


_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_INTEGER_RE = re.compile(r"-?[0-9]+")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Number(Column):
    """A plain decimal number (``-12.50``), parsed to ``Decimal``."""

    minimum: Decimal | None = None
    positive: bool = False
    places: int | None = None

    def parse(self, value: str) -> object:
        if not _DECIMAL_RE.fullmatch(value):
            hint = " (use '.' as the decimal separator, no thousands separator)" if "," in value else ""
            raise FieldError(f"{value!r} is not a decimal number{hint}")
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern already guarantees a valid literal
            raise FieldError(f"{value!r} is not a decimal number") from None
        if self.positive and number <= 0:
            raise FieldError(f"{value} must be greater than zero")
        if number < 0 and self.minimum is not None and self.minimum >= 0:
            raise FieldError(f"{value} is negative")
        if self.minimum is not None and number < self.minimum:
            raise FieldError(f"{value} is below the minimum {self.minimum}")
        if self.places is not None and -number.as_tuple().exponent > self.places:  # type: ignore[operator]
            raise FieldError(f"{value} has more than {self.places} decimal places")
        return number


@dataclass(frozen=True)
class Integer(Column):
    """A whole number, parsed to ``int``."""

    minimum: int | None = None

    def parse(self, value: str) -> object:
        if not _INTEGER_RE.fullmatch(value):
            raise FieldError(f"{value!r} is not a whole number")
        number = int(value)
        if self.minimum is not None and number < self.minimum:
            raise FieldError(f"{value} is negative" if self.minimum == 0 else f"{value} is below {self.minimum}")
        return number


@dataclass(frozen=True)
class Date(Column):
    """A calendar date ``YYYY-MM-DD``."""

    def parse(self, value: str) -> object:
        if not _DATE_RE.fullmatch(value):
            raise FieldError(f"{value!r} is not a date (expected YYYY-MM-DD)")
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise FieldError(f"{value!r} is not a valid date ({exc})") from None


@dataclass(frozen=True)
class Boolean(Column):
    """``true`` or ``false``, any case."""

    def parse(self, value: str) -> object:
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise FieldError(f"{value!r} is not a boolean (expected true or false)")


@dataclass(frozen=True)
class Choice(Column):
    """One of ``choices``."""

    choices: tuple[str, ...] = ()

    def parse(self, value: str) -> object:
        if value not in self.choices:
            raise FieldError(f"{value!r} is not one of {', '.join(self.choices)}")
        return value


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


@dataclass
class CsvTable:
    """Result of ``parse_csv``: the rows without problems and every issue found so far."""

    file: str
    columns: tuple[Column, ...]
    rows: list[CsvRow] = field(default_factory=list)
    issues: list[CsvIssue] = field(default_factory=list)

    def add_issue(self, row: int, column: str, message: str) -> None:
        """Record a problem found by the caller (unknown code, existing record...) in the same report."""
        self.issues.append(CsvIssue(row, column, message, self.file))

    def raise_if_issues(self) -> None:
        if self.issues:
            raise CsvImportError(self.file, self.issues)


def _decode(data: bytes, table: CsvTable) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end].hex(" ").upper()
        table.add_issue(line, "", f"not UTF-8: byte(s) 0x{bad} at byte offset {exc.start}")
        return data.decode("utf-8", errors="replace")


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
        data, label = source, name or "<csv>"
    else:
        path = Path(source)
        data, label = path.read_bytes(), name or path.name
    table = CsvTable(label, tuple(columns))
    text = _decode(data, table)
    if text.startswith("\ufeff"):
        table.add_issue(
            1,
            columns[0].name if columns else "",
            "U+FEFF ZERO WIDTH NO-BREAK SPACE at position 1 (byte-order mark; save the file as UTF-8 without BOM)",
        )
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    expected = [c.name for c in columns]
    try:
        header = next(reader, None)
    except csv.Error as exc:
        table.add_issue(1, "", f"unreadable header: {exc}")
        return table
    if header is None:
        table.add_issue(1, "", f"empty file (expected header {','.join(expected)})")
        return table
    header_ok = _check_header(header, expected, table)
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
        table.rows.append(row)
    return table


def _check_header(header: list[str], expected: list[str], table: CsvTable) -> bool:
    ok = True
    for index, cell in enumerate(header):
        for pos, ch in hidden_chars(cell):
            table.add_issue(1, cell, f"header: {describe_char(ch)} at position {pos} of column {index + 1}")
            ok = False
    if header != expected:
        if ok:
            table.add_issue(1, "", f"header is {','.join(header)!r}, expected exactly {','.join(expected)!r}")
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
