"""CSV import of the ledger's master data and opening balances (SPEC "Interfaces" headers): locations here;
items and opening balances, which can be large, stream through ``ledger.bulk_import`` (re-exported).

Invariants:
- All or nothing: every row and field is validated (``mes_common.csv_validation``: invisible and look-alike
  characters, numbers, kinds, duplicates) and checked against the database (unknown item or location codes,
  existing records with other content) before the first write; one ``CsvImportError`` lists every problem.
- Re-importing the same file changes nothing: identical records are skipped (opening balances: see
  ``ledger.bulk_import``); a change to master data is refused naming what is stored.
- Every record created names who imported it and from which file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Connection

from ledger import repository as repo
from ledger.bulk_import import (
    BALANCE_COLUMNS,
    ITEM_COLUMNS,
    OPENING_DEFAULT,
    ImportResult,
    import_balances,
    import_items,
)
from ledger.model import Item, Location, LocationKind
from mes_common.csv_cells import Choice, Code, Text
from mes_common.csv_validation import CsvTable, parse_csv

__all__ = ["BALANCE_COLUMNS", "ITEM_COLUMNS", "LOCATION_COLUMNS", "OPENING_DEFAULT", "ImportResult",
           "import_balances", "import_items", "import_locations"]

LOCATION_COLUMNS = (Code("code"), Text("name"), Choice("kind", tuple(k.value for k in LocationKind)))
_Record = TypeVar("_Record", Item, Location)


def _read(source: str | Path | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, name or "<csv>"
    path = Path(source)
    return path.read_bytes(), name or path.name


def import_locations(
    conn: Connection, source: str | Path | bytes, *, actor: str, name: str | None = None
) -> ImportResult:
    """Locations in file order: that order is their creation sequence ("the first stores location")."""
    data, label = _read(source, name)
    table = parse_csv(data, LOCATION_COLUMNS, key=("code",), name=label)
    wanted = [Location(str(r["code"]), str(r["name"]), LocationKind(str(r["kind"]))) for r in table.rows]
    existing = repo.get_locations(conn, [loc.code for loc in wanted])
    new = _only_new(table, wanted, existing, "location")
    table.raise_if_issues()
    repo.add_locations(conn, new, actor=actor, source=label)
    return ImportResult("locations", label, len(new), len(wanted) - len(new))


def _only_new(table: CsvTable, wanted: list[_Record], existing: Mapping[str, _Record], what: str) -> list[_Record]:
    new = []
    for row, record in zip(table.rows, wanted, strict=True):
        found = existing.get(record.code)
        if found is None:
            new.append(record)
        elif found != record:
            stored = ", ".join(f"{k} {v}" for k, v in vars(found).items() if k != "code")
            table.add_issue(row.line, "code", f"{what} {record.code} already exists with other data ({stored}); "
                            "an import does not change master data")  # fmt: skip
    return new


