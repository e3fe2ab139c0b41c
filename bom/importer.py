"""CSV import of BOM lines (SPEC header, optional ``fixed_qty``), through the shared validation toolkit.

Each (parent, revision) group of rows becomes one version, saved and released in the caller's transaction.
All or nothing: bad characters, numbers, dates, unknown items, unit-of-measure mismatches, differing
effectivity inside one revision, changes to a released revision, overlapping windows and cycles are all
reported in one ``CsvImportError`` naming row and column; the caller's transaction then rolls back.
Re-importing an identical released revision changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from bom import repository
from bom.model import BomLine, BomVersion, CycleError, VersionState
from mes_common.csv_cells import Boolean, Code, Column, Date, Integer, Number
from mes_common.csv_validation import CsvTable
from mes_common.errors import DomainError
from mes_common.limits import MAX_PCT, MAX_QTY_PER
from routing import repository as routing_repository
from routing.importer import parse_table
from routing.versioning import superseded_end

ZERO = Decimal(0)

BOM_COLUMNS: tuple[Column, ...] = (
    Code("parent"), Code("revision", max_length=32), Date("valid_from"), Date("valid_to", required=False),
    Code("component"), Number("qty_per", positive=True, places=6, maximum=MAX_QTY_PER), Code("uom", max_length=16),
    Number("scrap_pct", minimum=ZERO, places=6, maximum=MAX_PCT,
           required=False), Integer("operation", minimum=1, required=False),
    Boolean("phantom"),
)
BOM_OPTIONAL: tuple[Column, ...] = (Boolean("fixed_qty", required=False),)


@dataclass(frozen=True)
class BomImportResult:
    released: list[str]  # "ITEM rev REV"
    unchanged: list[str]
    superseded: list[str] = field(default_factory=list)  # "ITEM rev REV: valid to DAY" (``--supersede``)

    def lines(self, dry_run: bool = False) -> list[str]:
        """What the import changed (or, for a dry run, would change), one line each."""
        out = [f"released BOM {name}" for name in self.released]
        out += [f"superseded BOM {name}" for name in self.superseded]
        out += [f"unchanged BOM {name} (already released, identical)" for name in self.unchanged]
        if dry_run:
            out.append(f"{len(self.released)} to release, {len(self.superseded)} superseded, "
                       f"{len(self.unchanged)} unchanged (dry run: nothing written)")
        return out


def import_bom(
    conn: Connection, source: str | Path | bytes, name: str | None = None, *, supersede: bool = False
) -> BomImportResult:
    """Save and release every revision of the file; ``supersede`` end-dates earlier open revisions."""
    parsed = parse_table(source, BOM_COLUMNS, BOM_OPTIONAL, ("parent", "revision", "component", "operation"), name)
    codes = {str(r["parent"]) for r in parsed.rows} | {str(r["component"]) for r in parsed.rows}
    known = repository.known_items(conn, codes)
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in parsed.rows:
        parent, component = str(row["parent"]), str(row["component"])
        if parent not in known:
            parsed.add_issue(row.line, "parent", f"unknown item {parent}")
        if component not in known:
            parsed.add_issue(row.line, "component", f"unknown item {component}")
        elif row["uom"] != known[component]:
            parsed.add_issue(row.line, "uom", f"{row['uom']} but item {component} is counted in {known[component]}")
        group = groups.setdefault((parent, str(row["revision"])), [])
        if group and (row["valid_from"], row["valid_to"]) != (group[0]["valid_from"], group[0]["valid_to"]):
            parsed.add_issue(row.line, "valid_from", f"BOM {parent} rev {row['revision']}: effectivity differs "
                                                     f"from row {group[0].line}")
        group.append(row)
    versions: list[BomVersion] = []
    first_line: dict[tuple[str, str], int] = {}
    for (parent, revision), rows in groups.items():
        first_line[(parent, revision)] = rows[0].line
        _check_operations(conn, parsed, parent, revision, rows)
        try:
            lines = tuple(
                BomLine(str(r["component"]), r["qty_per"], str(r["uom"]), r["scrap_pct"] or ZERO,
                        None if r["operation"] is None else int(str(r["operation"])), bool(r["phantom"]),
                        bool(r.get("fixed_qty") or False))
                for r in rows
            )
            valid_to = rows[0]["valid_to"]
            versions.append(BomVersion(parent, revision, VersionState.DRAFT, _date(rows[0]["valid_from"]),
                                       None if valid_to is None else _date(valid_to), lines))
        except DomainError as exc:
            parsed.add_issue(rows[0].line, "component", exc.message)
    parsed.raise_if_issues()
    # A savepoint: a refusal part-way leaves nothing behind even if the caller commits its transaction.
    savepoint = conn.begin_nested()
    try:
        to_release = repository.save_boms(conn, versions)
        superseded = _superseded(conn, to_release) if supersede else []
        repository.release_boms(conn, [(v.item, v.revision) for v in to_release], supersede=supersede)
    except DomainError as exc:
        savepoint.rollback()
        parsed.add_issue(_line_of(exc, first_line), "revision", exc.message)
        parsed.raise_if_issues()
    savepoint.commit()
    released = [f"{v.item} rev {v.revision}" for v in to_release]
    unchanged = [f"{v.item} rev {v.revision}" for v in versions if f"{v.item} rev {v.revision}" not in released]
    return BomImportResult(released, unchanged, superseded)


def _superseded(conn: Connection, drafts: list[BomVersion]) -> list[str]:
    """The released revisions that releasing ``drafts`` with ``supersede`` end-dates (the rule of
    ``repository.release_boms``), as "ITEM rev REV: valid to DAY"."""
    out: list[str] = []
    for draft in drafts:
        for other in repository.bom_versions_of(conn, draft.item):
            end = superseded_end(draft.valid_from, other.valid_from, other.valid_to)
            if other.state == VersionState.RELEASED and end is not None:
                out.append(f"{other.item} rev {other.revision}: valid to {end.isoformat()}")
    return out


def _check_operations(conn: Connection, parsed: CsvTable, parent: str, revision: str, rows: list[Any]) -> None:
    """A line consumed at an operation that the parent's routing (the released one effective when the revision
    starts) does not have would make every release of the parent fail: refused here, when the routing is known."""
    valid_from = rows[0]["valid_from"]
    if not isinstance(valid_from, date):
        return
    routing = routing_repository.effective_routing(conn, parent, valid_from)
    if routing is None:
        return
    numbers = {op.number for op in routing.operations}
    for row in rows:
        operation = row["operation"]
        if operation is not None and operation not in numbers:
            have = ", ".join(str(n) for n in sorted(numbers))
            parsed.add_issue(row.line, "operation", f"BOM {parent} rev {revision} consumes {row['component']} at "
                             f"operation {operation}, which routing {parent} rev {routing.revision} (effective "
                             f"{valid_from.isoformat()}) does not have (operations {have})")


def _line_of(exc: DomainError, first_line: dict[tuple[str, str], int]) -> int:
    """The first row of the revision the error is about (best effort: the message names it)."""
    if isinstance(exc, CycleError):
        for (parent, _revision), line in first_line.items():
            if parent in exc.path:
                return line
    for (parent, revision), line in first_line.items():
        if f"BOM {parent} rev {revision}" in exc.message:
            return line
    return 1


def _date(value: object) -> date:
    assert isinstance(value, date)
    return value
