"""CSV imports of work centers and routing operations, through the shared validation toolkit.

All or nothing: every problem of a file (bad characters, numbers, dates, unknown items, locations or work
centers, invalid routing graphs, changes to released revisions) is collected into one ``CsvImportError``
naming row and column, and nothing is written. Importing operations releases each revision; re-importing
an identical released revision changes nothing.

Optional columns may follow the SPEC header, in any order: ``machines``, ``terminals`` (``;``-separated
codes), ``supply_location`` for work centers; ``after`` (``;``-separated predecessor operations) for
operations.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.engine import Connection

from mes_common.csv_cells import Code, Column, Date, Integer, Number, Text
from mes_common.csv_validation import CsvTable, detect_delimiter, parse_csv
from mes_common.errors import DomainError
from mes_common.limits import CODE_LENGTH, MAX_KWH, MAX_MINUTES, MAX_RATE, too_long
from routing import repository
from routing.model import Operation, RoutingVersion, WorkCenter
from routing.tables import work_center_machines, work_center_terminals
from routing.versioning import VersionState, superseded_end

ZERO = Decimal(0)
_items = table("items", column("code"))
_locations = table("locations", column("code"))

WORK_CENTER_COLUMNS: tuple[Column, ...] = (
    Code("code"), Text("name"), Number("labor_rate", minimum=ZERO, places=6, maximum=MAX_RATE),
    Number("machine_rate", minimum=ZERO, places=6, maximum=MAX_RATE),
    Number("energy_tariff", minimum=ZERO, places=6, maximum=MAX_RATE), Code("cost_center"),
)
WORK_CENTER_OPTIONAL: tuple[Column, ...] = (
    Code("machines", required=False, max_length=2000), Code("terminals", required=False, max_length=2000),
    Code("supply_location", required=False),
)
OPERATION_COLUMNS: tuple[Column, ...] = (
    Code("item"), Code("revision", max_length=32), Date("valid_from"), Date("valid_to", required=False),
    Integer("operation", minimum=1), Code("work_center"),
    Number("setup_min", minimum=ZERO, places=6, maximum=MAX_MINUTES),
    Number("run_min_per_unit", minimum=ZERO, places=6, maximum=MAX_MINUTES),
    Number("std_kwh_per_unit", minimum=ZERO, places=6, maximum=MAX_KWH),
    Number("yield_pct", positive=True, places=6, maximum=Decimal(100)), Integer("rework_to", minimum=1, required=False),
    Text("quality_standard", required=False),
)
OPERATION_OPTIONAL: tuple[Column, ...] = (Code("after", required=False, max_length=200),)


@dataclass(frozen=True)
class ImportResult:
    written: list[str]  # work-center codes, or "ITEM rev REV" of each released routing
    unchanged: list[str]
    changes: tuple[str, ...] = ()  # what else the import changed (rates, links, superseded revisions), one line each


def columns_for(data: bytes, base: Sequence[Column], optional: Sequence[Column]) -> tuple[Column, ...]:
    """The expected columns: the SPEC header plus whichever known optional columns the file's header adds."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    names = [c.name for c in base]
    header = next(csv.reader(io.StringIO(text), delimiter=detect_delimiter(text, names)), [])
    by_name = {c.name: c for c in optional}
    extra = [by_name[name] for name in header[len(base):] if name in by_name]
    return (*base, *extra)


def split_codes(value: object) -> tuple[str, ...]:
    return tuple(part for part in str(value or "").split(";") if part)


def parse_table(source: str | Path | bytes, base: Sequence[Column], optional: Sequence[Column],
                key: Sequence[str], name: str | None = None) -> CsvTable:
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    label = name or (Path(source).name if not isinstance(source, bytes) else None)
    return parse_csv(data, columns_for(data, base, optional), key=key, name=label)


def import_work_centers(conn: Connection, source: str | Path | bytes, name: str | None = None, *,
                        effective: date | None = None) -> ImportResult:
    """Insert or update the work centers of a CSV file (all or nothing): changed rates start a new version on
    ``effective`` (default today), machines and terminals are linked, never unlinked
    (``routing.repository.save_work_centers``)."""
    parsed = parse_table(source, WORK_CENTER_COLUMNS, WORK_CENTER_OPTIONAL, ("code",), name)
    locations = {r.get("supply_location") for r in parsed.rows} - {None}
    known_locations = set(conn.execute(select(_locations.c.code).where(_locations.c.code.in_(locations))).scalars())
    owners: dict[tuple[str, str], tuple[str, int]] = {}
    centers: list[WorkCenter] = []
    codes = [str(r["code"]) for r in parsed.rows]
    for row in parsed.rows:
        supply = row.get("supply_location")
        if supply is not None and supply not in known_locations:
            parsed.add_issue(row.line, "supply_location", f"unknown location {supply}")
        machines, terminals = split_codes(row.get("machines")), split_codes(row.get("terminals"))
        for kind, values in (("machines", machines), ("terminals", terminals)):
            for value in values:
                if len(value) > CODE_LENGTH:
                    parsed.add_issue(row.line, kind, f"code {too_long(value, CODE_LENGTH)}")
                first = owners.setdefault((kind, value), (str(row["code"]), row.line))
                if first[0] != row["code"]:
                    parsed.add_issue(row.line, kind, f"{value} already belongs to work center {first[0]} "
                                                     f"(row {first[1]})")
        try:
            centers.append(WorkCenter(
                str(row["code"]), str(row["name"]), _d(row["labor_rate"]), _d(row["machine_rate"]),
                _d(row["energy_tariff"]), str(row["cost_center"]), machines, terminals,
                None if supply is None else str(supply),
            ))
        except DomainError as exc:
            parsed.add_issue(row.line, "code", exc.message)
    for kind, tbl, col in (("machines", work_center_machines, "machine"),
                           ("terminals", work_center_terminals, "terminal")):
        mine = [value for (k, value) in owners if k == kind]
        if not mine:
            continue
        for value, owner in conn.execute(select(tbl.c[col], tbl.c.work_center).where(tbl.c[col].in_(mine))):
            if owner not in codes:
                _, line = owners[(kind, value)]
                parsed.add_issue(line, kind, f"{value} already belongs to work center {owner}")
    parsed.raise_if_issues()
    label = name or (Path(source).name if not isinstance(source, bytes) else "")
    try:
        changes = repository.save_work_centers(conn, centers, effective=effective, source=f"import:{label}")
    except DomainError as exc:
        parsed.add_issue(1, "", exc.message)
        parsed.raise_if_issues()
    changed = {line.split(":")[0].removeprefix("work center ") for line in changes if line.startswith("work center")}
    return ImportResult([c for c in codes if c in changed], [c for c in codes if c not in changed], tuple(changes))


def _d(value: object) -> Decimal:
    assert isinstance(value, Decimal)
    return value


def import_operations(
    conn: Connection, source: str | Path | bytes, name: str | None = None, *, supersede: bool = False
) -> ImportResult:
    """Save and release the routing revisions of a CSV file (all or nothing); ``supersede`` end-dates
    earlier open revisions of the same item."""
    parsed = parse_table(source, OPERATION_COLUMNS, OPERATION_OPTIONAL, ("item", "revision", "operation"), name)
    items = {str(r["item"]) for r in parsed.rows}
    known_items = set(conn.execute(select(_items.c.code).where(_items.c.code.in_(items))).scalars())
    known_centers = set(repository.work_centers(conn, {str(r["work_center"]) for r in parsed.rows}))
    groups: dict[tuple[str, str], list[Any]] = {}
    bad_groups: set[tuple[str, str]] = set()
    for row in parsed.rows:
        issues_before = len(parsed.issues)
        if row["item"] not in known_items:
            parsed.add_issue(row.line, "item", f"unknown item {row['item']}")
        if row["work_center"] not in known_centers:
            parsed.add_issue(row.line, "work_center", f"unknown work center {row['work_center']}")
        group = groups.setdefault((str(row["item"]), str(row["revision"])), [])
        if group and (row["valid_from"], row["valid_to"]) != (group[0]["valid_from"], group[0]["valid_to"]):
            parsed.add_issue(row.line, "valid_from", f"routing {row['item']} rev {row['revision']}: effectivity "
                                                     f"differs from row {group[0].line}")
        after = row.get("after")
        if after is not None and not all(part.isdigit() for part in split_codes(after)):
            parsed.add_issue(row.line, "after", f"{after!r} is not a ';'-separated list of operation numbers")
        group.append(row)
        if len(parsed.issues) > issues_before:
            bad_groups.add((str(row["item"]), str(row["revision"])))
    versions: list[tuple[RoutingVersion, int]] = []
    for (item, revision), rows in groups.items():
        if (item, revision) in bad_groups:
            continue
        try:
            ops = tuple(
                Operation(
                    int(str(r["operation"])), str(r["work_center"]), _d(r["setup_min"]), _d(r["run_min_per_unit"]),
                    _d(r["std_kwh_per_unit"]), _d(r["yield_pct"]), str(r.get("quality_standard") or ""),
                    None if r["rework_to"] is None else int(str(r["rework_to"])),
                    None if r.get("after") is None else tuple(int(p) for p in split_codes(r["after"])),
                )
                for r in rows
            )
            valid_to = rows[0]["valid_to"]
            version = RoutingVersion(item, revision, VersionState.DRAFT, _date(rows[0]["valid_from"]),
                                     None if valid_to is None else _date(valid_to), ops)
            versions.append((version, rows[0].line))
        except (DomainError, ValueError) as exc:
            parsed.add_issue(rows[0].line, "operation", getattr(exc, "message", str(exc)))
    parsed.raise_if_issues()
    written: list[str] = []
    unchanged: list[str] = []
    changes: list[str] = []
    # A savepoint: a refusal part-way leaves nothing behind even if the caller commits its transaction.
    savepoint = conn.begin_nested()
    for version, line in versions:
        try:
            if repository.save_routing(conn, version):
                if supersede:
                    changes += _superseded(conn, version)
                repository.release_routing(conn, version.item, version.revision, supersede=supersede)
                written.append(f"{version.item} rev {version.revision}")
            else:
                unchanged.append(f"{version.item} rev {version.revision}")
        except DomainError as exc:
            parsed.add_issue(line, "revision", exc.message)
    if parsed.issues:
        savepoint.rollback()
        parsed.raise_if_issues()
    savepoint.commit()
    return ImportResult(written, unchanged, tuple(changes))


def _superseded(conn: Connection, version: RoutingVersion) -> list[str]:
    """The released revisions that releasing ``version`` with ``supersede`` end-dates (the rule of
    ``repository.release_routing``), one line each."""
    return [
        f"superseded routing {other.item} rev {other.revision}: valid to {end.isoformat()}"
        for other in repository.routing_versions_of(conn, version.item)
        if other.state == VersionState.RELEASED
        and (end := superseded_end(version.valid_from, other.valid_from, other.valid_to)) is not None
    ]


def _date(value: object) -> date:
    assert isinstance(value, date)
    return value
