"""The report of a refused CSV file: one ``CsvIssue`` per problem, one ``CsvImportError`` listing them all.

Issues name the file, the row (the file's line number where the record starts; the header is row 1), the
column and what is wrong. ``CsvImportError.issues`` holds every issue, sorted by row (stable: issues of one row
stay in column order); its message spells out at most ``MESSAGE_ISSUE_LIMIT`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mes_common.errors import DomainError

# How many issues the exception message spells out; all of them stay in ``CsvImportError.issues``.
MESSAGE_ISSUE_LIMIT = 100


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

    def __init__(self, file: str, issues: Sequence[CsvIssue], *, omitted: int = 0) -> None:
        self.file = file
        # Stable sort: issues of one row stay in column order.
        self.issues = sorted(issues, key=lambda issue: issue.row)
        self.omitted = omitted  # further issues found but not kept
        lines = [f"{file}: {len(self.issues) + omitted} problem(s), nothing imported:"]
        lines += [f"  {issue}" for issue in self.issues[:MESSAGE_ISSUE_LIMIT]]
        if len(self.issues) + omitted > MESSAGE_ISSUE_LIMIT:
            lines.append(f"  ... and {len(self.issues) + omitted - MESSAGE_ISSUE_LIMIT} more")
        super().__init__("\n".join(lines))
