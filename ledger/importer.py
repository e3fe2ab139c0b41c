"""CSV import of the ledger's master data (items, locations) and opening balances (SPEC "Interfaces" headers).

Invariants:
- All or nothing: every row and field is validated (``mes_common.csv_validation``: invisible and look-alike
  characters, numbers, kinds, duplicates) and checked against the database (unknown item or location codes,
  existing records with other content) before the first write; one ``CsvImportError`` lists every problem.
- Re-importing the same file changes nothing: identical master records are skipped, and each balance row is a
  receipt whose idempotency key is derived from the file's content and the row, so a retry finds its moves.
- Every record created names who imported it and from which file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Connection

from ledger import queries as ledger_queries
from ledger import repository as repo
from ledger import service as ledger_service
from ledger.model import Item, ItemKind, Location, LocationKind, MoveKind, MoveRequest
from ledger.units import unit_problem
from mes_common.csv_cells import Choice, Code, Number, Text
from mes_common.csv_validation import CsvRow, CsvTable, parse_csv
from mes_common.errors import DomainError
from mes_common.limits import MAX_RATE
from mes_common.money import ZERO, mul_cents
from mes_common.provenance import Provenance

ITEM_COLUMNS = (
    Code("code"),
    Text("name"),
    Code("uom", max_length=16),
    Choice("kind", tuple(k.value for k in ItemKind)),
)
LOCATION_COLUMNS = (Code("code"), Text("name"), Choice("kind", tuple(k.value for k in LocationKind)))
_Record = TypeVar("_Record", Item, Location)
BALANCE_COLUMNS = (
    Code("item"),
    Code("location"),
    Code("lot", required=False),
    Number("qty", positive=True, places=6),
    Number("unit_cost", minimum=ZERO, places=6, maximum=MAX_RATE),
)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: ``created`` new records (or moves), ``unchanged`` ones already there."""

    kind: str
    file: str
    created: int
    unchanged: int

    def __str__(self) -> str:
        return f"{self.kind} from {self.file}: {self.created} imported, {self.unchanged} already present"


def _read(source: str | Path | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, name or "<csv>"
    path = Path(source)
    return path.read_bytes(), name or path.name


def import_items(conn: Connection, source: str | Path | bytes, *, actor: str, name: str | None = None) -> ImportResult:
    data, label = _read(source, name)
    table = parse_csv(data, ITEM_COLUMNS, key=("code",), name=label)
    wanted = [Item(str(r["code"]), str(r["name"]), str(r["uom"]), ItemKind(str(r["kind"]))) for r in table.rows]
    existing = repo.get_items(conn, [i.code for i in wanted])
    new = _only_new(table, wanted, existing, "item")
    table.raise_if_issues()
    repo.add_items(conn, new, actor=actor, source=label)
    return ImportResult("items", label, len(new), len(wanted) - len(new))


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


def import_balances(
    conn: Connection,
    source: str | Path | bytes,
    *,
    actor: str,
    effective_at: datetime | None = None,
    name: str | None = None,
) -> ImportResult:
    """Opening balances as receipts (value = qty x unit_cost, in cents), dated ``effective_at`` or now."""
    data, label = _read(source, name)
    table = parse_csv(data, BALANCE_COLUMNS, key=("item", "location", "lot"), name=label)
    known_items = repo.get_items(conn, [str(r["item"]) for r in table.rows])
    known_locations = repo.get_locations(conn, [str(r["location"]) for r in table.rows])
    digest = hashlib.sha256(data).hexdigest()[:16]
    requests = []
    for row in table.rows:
        if _known(table, row, known_items, known_locations):
            try:
                requests.append(_opening_receipt(row, label, digest, actor, effective_at))
            except DomainError as exc:  # a value beyond the ledger's range (qty x unit cost)
                table.add_issue(row.line, "unit_cost", exc.message)
    table.raise_if_issues()
    before = ledger_queries.find_moves(conn, [r.idempotency_key for r in requests])
    ledger_service.post_moves(conn, requests)
    return ImportResult("balances", label, len(requests) - len(before), len(before))


def _known(table: CsvTable, row: CsvRow, items: dict[str, Item], locations: dict[str, Location]) -> bool:
    ok = True
    item = items.get(str(row["item"]))
    if item is None:
        table.add_issue(row.line, "item", f"unknown item {row['item']} (import items first)")
        ok = False
    else:
        qty = row["qty"]
        assert isinstance(qty, Decimal)
        problem = unit_problem(qty, item.uom)
        if problem is not None:
            table.add_issue(row.line, "qty", f"{problem} (item {item.code})")
            ok = False
    if row["location"] not in locations:
        table.add_issue(row.line, "location", f"unknown location {row['location']} (import locations first)")
        ok = False
    return ok


def _opening_receipt(row: CsvRow, label: str, digest: str, actor: str, effective_at: datetime | None) -> MoveRequest:
    qty, unit = row["qty"], row["unit_cost"]
    assert isinstance(qty, Decimal) and isinstance(unit, Decimal)
    return MoveRequest(
        idempotency_key=f"import:balances:{digest}:{row.line}",
        kind=MoveKind.RECEIPT,
        item=str(row["item"]),
        qty=qty,
        to_location=str(row["location"]),
        lot=str(row["lot"] or ""),
        value=mul_cents(qty, unit),
        actor=actor,
        reason=f"opening balance, {label} row {row.line}",
        provenance=Provenance.MANUAL,
        effective_at=effective_at,
        reference=f"import:{label}",
    )
