"""Routing persistence: work centers, routing versions (save, release, obsolete, look up), release tokens.

Works inside the caller's connection and transaction (SQLAlchemy Core). Invariants:
- Released routing versions are never changed; saving the same revision again with the same content is a
  no-op, with different content a ``VersionError`` (a change is a new revision).
- Two released revisions of one item never overlap; releases are serialised by the row lock that
  ``bump_generation`` takes on the scope's token (SQLite is serialised by BEGIN IMMEDIATE).
- Every release or obsolescence changes the scope's token in the same transaction, so a cache keyed on the
  token (``released_routings``) is never stale.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from mes_common.db import utcnow
from mes_common.money import fmt_qty
from routing.model import Operation, RoutingError, RoutingVersion, WorkCenter
from routing.tables import (
    release_generations,
    routing_operations,
    routing_versions,
    work_center_machines,
    work_center_rates,
    work_center_terminals,
)
from routing.tables import (
    work_centers as work_centers_table,
)
from routing.versioning import VersionError, VersionState, check_no_overlap, check_transition, superseded_end

# ---------------------------------------------------------------- release tokens


def current_token(conn: Connection, scope: str) -> str | None:
    return conn.execute(select(release_generations.c.token).where(release_generations.c.scope == scope)).scalar()


def bump_generation(conn: Connection, scope: str) -> str:
    """Give ``scope`` a new token (and hold its row lock until the transaction ends)."""
    token = uuid.uuid4().hex
    values = {"scope": scope, "token": token, "changed_at": utcnow()}
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(release_generations).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["scope"], set_={"token": token, "changed_at": values["changed_at"]}
    )
    conn.execute(stmt)
    return token


# ---------------------------------------------------------------- work centers


FIRST_RATES = date(1970, 1, 1)  # a new work center's first rates apply from the start of time


def _rates(wc: WorkCenter) -> tuple[Decimal, Decimal, Decimal]:
    return (wc.labor_rate, wc.machine_rate, wc.energy_tariff)


def save_work_centers(conn: Connection, centers: Sequence[WorkCenter], *, effective: date | None = None,
                      source: str = "") -> list[str]:
    """Insert new work centers and update existing ones; returns what changed, one line per change.

    Rates are versioned: a new work center's rates apply from ``FIRST_RATES``; changed rates start a new
    version on ``effective`` (default today; a version already on that date is never changed), so orders released
    before keep theirs. Machines and terminals are only linked (or moved from another work center of the same
    import), never unlinked: an import that does not mention one leaves it where it is."""
    now = utcnow()
    day = effective or now.date()
    codes = [wc.code for wc in centers]
    current = work_centers(conn, codes, as_of=day)
    changes: list[str] = []
    r = work_center_rates.c
    for wc in centers:
        values = {"name": wc.name, "cost_center": wc.cost_center, "supply_location": wc.supply_location,
                  "updated_at": now}
        before = current.get(wc.code)
        version = {"work_center": wc.code, "labor_rate": wc.labor_rate, "machine_rate": wc.machine_rate,
                   "energy_tariff": wc.energy_tariff, "recorded_at": now, "source": source[:200]}
        if before is None:
            conn.execute(insert(work_centers_table).values(code=wc.code, labor_rate=wc.labor_rate,
                                                           machine_rate=wc.machine_rate,
                                                           energy_tariff=wc.energy_tariff, **values))
            conn.execute(insert(work_center_rates).values(valid_from=FIRST_RATES, **version))
            changes.append(f"work center {wc.code}: new")
            continue
        if (before.name, before.cost_center, before.supply_location) != (wc.name, wc.cost_center, wc.supply_location):
            conn.execute(update(work_centers_table).where(work_centers_table.c.code == wc.code).values(**values))
            changes.append(f"work center {wc.code}: name, cost center or supply location changed")
        if _rates(before) != _rates(wc):
            taken = conn.execute(select(r.labor_rate, r.machine_rate, r.energy_tariff)
                                 .where(r.work_center == wc.code, r.valid_from == day)).first()
            if taken is not None:
                raise RoutingError(f"work center {wc.code}: rates from {day.isoformat()} are already labor "
                                   f"{fmt_qty(taken[0])}, machine {fmt_qty(taken[1])}, energy {fmt_qty(taken[2])}; "
                                   "a rate version is never changed: give the new rates another effective date")
            conn.execute(insert(work_center_rates).values(valid_from=day, **version))
            changes.append(f"work center {wc.code}: rates from {day.isoformat()}: labor {_change(before, wc, 0)}, "
                           f"machine {_change(before, wc, 1)}, energy {_change(before, wc, 2)} (orders released "
                           "before keep theirs)")
    _refresh_latest_rates(conn, codes)
    changes += _link(conn, work_center_machines, "machine", [(m, wc.code) for wc in centers for m in wc.machines])
    changes += _link(conn, work_center_terminals, "terminal", [(t, wc.code) for wc in centers for t in wc.terminals])
    return changes


def _change(before: WorkCenter, after: WorkCenter, index: int) -> str:
    old, new = _rates(before)[index], _rates(after)[index]
    return fmt_qty(new) if old == new else f"{fmt_qty(old)} -> {fmt_qty(new)}"


def _refresh_latest_rates(conn: Connection, codes: Sequence[str]) -> None:
    """``work_centers`` shows each work center's latest rate version."""
    r = work_center_rates.c
    latest = select(r.work_center, func.max(r.valid_from).label("valid_from")).where(r.work_center.in_(codes)) \
        .group_by(r.work_center).subquery()
    rows = conn.execute(select(r.work_center, r.labor_rate, r.machine_rate, r.energy_tariff)
                        .join(latest, (latest.c.work_center == r.work_center) & (latest.c.valid_from == r.valid_from)))
    for row in rows:
        conn.execute(update(work_centers_table).where(work_centers_table.c.code == row.work_center)
                     .values(labor_rate=row.labor_rate, machine_rate=row.machine_rate, energy_tariff=row.energy_tariff))


def _link(conn: Connection, table: Any, column: str, pairs: list[tuple[str, str]]) -> list[str]:
    """Link each (code, work center) pair: a new code is inserted, one owned by another work center moved."""
    if not pairs:
        return []
    owners: dict[str, str] = {code: wc for code, wc in conn.execute(
        select(table.c[column], table.c.work_center).where(table.c[column].in_([code for code, _ in pairs])))}
    changes = []
    for code, wc in pairs:
        owner = owners.get(code)
        if owner == wc:
            continue
        if owner is None:
            conn.execute(insert(table).values({column: code, "work_center": wc}))
            changes.append(f"{column} {code} linked to {wc}")
        else:
            conn.execute(update(table).where(table.c[column] == code).values(work_center=wc))
            changes.append(f"{column} {code} moved from {owner} to {wc}")
    return changes


def work_centers(conn: Connection, codes: Iterable[str] | None = None, *, as_of: date | None = None
                 ) -> dict[str, WorkCenter]:
    """Work centers by code with their latest rates, or (``as_of``) the rates effective on that date."""
    query = select(work_centers_table)
    machine_q = select(work_center_machines)
    terminal_q = select(work_center_terminals)
    wanted: list[str] | None = None
    if codes is not None:
        wanted = list(codes)
        query = query.where(work_centers_table.c.code.in_(wanted))
        machine_q = machine_q.where(work_center_machines.c.work_center.in_(wanted))
        terminal_q = terminal_q.where(work_center_terminals.c.work_center.in_(wanted))
    machines: dict[str, list[str]] = {}
    for row in conn.execute(machine_q.order_by(work_center_machines.c.machine)):
        machines.setdefault(row.work_center, []).append(row.machine)
    terminals: dict[str, list[str]] = {}
    for row in conn.execute(terminal_q.order_by(work_center_terminals.c.terminal)):
        terminals.setdefault(row.work_center, []).append(row.terminal)
    rates = {} if as_of is None else rates_on(conn, as_of, wanted)
    found = {}
    for row in conn.execute(query.order_by(work_centers_table.c.code)):
        labor, machine, energy = rates.get(row.code, (row.labor_rate, row.machine_rate, row.energy_tariff))
        found[row.code] = WorkCenter(
            row.code, row.name, labor, machine, energy, row.cost_center,
            tuple(machines.get(row.code, ())), tuple(terminals.get(row.code, ())), row.supply_location,
        )
    return found


def rates_on(conn: Connection, day: date, codes: Sequence[str] | None = None
             ) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """(labor, machine, energy) of each work center effective on ``day`` (its latest version from on or before)."""
    r = work_center_rates.c
    latest = select(r.work_center, func.max(r.valid_from).label("valid_from")).where(r.valid_from <= day)
    if codes is not None:
        latest = latest.where(r.work_center.in_(codes))
    sub = latest.group_by(r.work_center).subquery()
    rows = conn.execute(select(r.work_center, r.labor_rate, r.machine_rate, r.energy_tariff)
                        .join(sub, (sub.c.work_center == r.work_center) & (sub.c.valid_from == r.valid_from)))
    return {row.work_center: (row.labor_rate, row.machine_rate, row.energy_tariff) for row in rows}


# ---------------------------------------------------------------- routing versions


def _operation(row: Any) -> Operation:
    after = None if row.after is None else tuple(int(n) for n in row.after.split(";") if n)
    return Operation(row.number, row.work_center, row.setup_min, row.run_min_per_unit, row.std_kwh_per_unit,
                     row.yield_pct, row.quality_standard, row.rework_to, after)


def _load(conn: Connection, version_rows: Sequence[Any]) -> list[RoutingVersion]:
    if not version_rows:
        return []
    ids = [row.id for row in version_rows]
    ops: dict[int, list[Operation]] = {}
    query = select(routing_operations).where(routing_operations.c.routing_id.in_(ids))
    for row in conn.execute(query.order_by(routing_operations.c.routing_id, routing_operations.c.number)):
        ops.setdefault(row.routing_id, []).append(_operation(row))
    return [
        RoutingVersion(row.item, row.revision, VersionState(row.state), row.valid_from, row.valid_to,
                       tuple(ops.get(row.id, ())))
        for row in version_rows
    ]


def find_routing(conn: Connection, item: str, revision: str) -> RoutingVersion | None:
    rows = conn.execute(
        select(routing_versions).where(routing_versions.c.item == item, routing_versions.c.revision == revision)
    ).all()
    loaded = _load(conn, rows)
    return loaded[0] if loaded else None


def get_routing(conn: Connection, item: str, revision: str) -> RoutingVersion:
    """The routing revision (any state); raises ``RoutingError`` naming it when there is none."""
    version = find_routing(conn, item, revision)
    if version is None:
        raise RoutingError(f"routing {item} rev {revision} does not exist")
    return version


def routing_versions_of(conn: Connection, item: str) -> list[RoutingVersion]:
    rows = conn.execute(
        select(routing_versions).where(routing_versions.c.item == item).order_by(routing_versions.c.valid_from)
    ).all()
    return _load(conn, rows)


def effective_routing(conn: Connection, item: str, as_of: date) -> RoutingVersion | None:
    """The released routing of ``item`` effective on ``as_of`` (valid_to inclusive), or None."""
    c = routing_versions.c
    rows = conn.execute(
        select(routing_versions).where(
            c.item == item, c.state == VersionState.RELEASED.value, c.valid_from <= as_of,
            (c.valid_to.is_(None)) | (c.valid_to >= as_of),
        )
    ).all()
    loaded = _load(conn, rows)
    return loaded[0] if loaded else None


class RoutingCache:
    """Released routings of one database, for the process (owned by ``wip_costing.unit_of_work.Caches``).

    Invalidation: the entry carries the "routing" release token it was read under; every release or
    obsolescence draws a new random token, so a stale entry is never served."""

    def __init__(self) -> None:
        self.entry: tuple[str, dict[str, list[RoutingVersion]]] | None = None

    def clear(self) -> None:
        self.entry = None


def released_routings(conn: Connection, cache: RoutingCache | None = None) -> dict[str, list[RoutingVersion]]:
    """Every released routing by item (sorted by valid_from); with ``cache``, read again only after a release."""
    token = current_token(conn, "routing")
    cached = cache.entry if cache is not None else None
    if token is not None and cached is not None and cached[0] == token:
        return cached[1]
    rows = conn.execute(
        select(routing_versions).where(routing_versions.c.state == VersionState.RELEASED.value)
        .order_by(routing_versions.c.item, routing_versions.c.valid_from)
    ).all()
    by_item: dict[str, list[RoutingVersion]] = {}
    for version in _load(conn, rows):
        by_item.setdefault(version.item, []).append(version)
    if token is not None and cache is not None:
        cache.entry = (token, by_item)
    return by_item


def save_routing(conn: Connection, version: RoutingVersion) -> bool:
    """Store ``version`` as a draft (replacing a draft of the same revision). Returns False when the same
    revision is already released or obsolete with identical content (nothing to do)."""
    existing = conn.execute(
        select(routing_versions.c.id, routing_versions.c.state)
        .where(routing_versions.c.item == version.item, routing_versions.c.revision == version.revision)
    ).first()
    if existing is not None and existing.state != VersionState.DRAFT.value:
        stored = get_routing(conn, version.item, version.revision)
        if (stored.valid_from, stored.valid_to, stored.operations) == (
            version.valid_from, version.valid_to, version.operations
        ):
            return False
        raise VersionError(f"{version.what} is {existing.state} and cannot change; save the change as a new revision")
    _check_work_centers(conn, version)
    now = utcnow()
    if existing is None:
        version_id = conn.execute(
            insert(routing_versions).values(
                item=version.item, revision=version.revision, state=VersionState.DRAFT.value,
                valid_from=version.valid_from, valid_to=version.valid_to, created_at=now,
            ).returning(routing_versions.c.id)
        ).scalar_one()
    else:
        version_id = existing.id
        conn.execute(update(routing_versions).where(routing_versions.c.id == version_id)
                     .values(valid_from=version.valid_from, valid_to=version.valid_to))
        conn.execute(delete(routing_operations).where(routing_operations.c.routing_id == version_id))
    conn.execute(insert(routing_operations), [
        {
            "routing_id": version_id, "number": op.number, "work_center": op.work_center,
            "setup_min": op.setup_min, "run_min_per_unit": op.run_min_per_unit,
            "std_kwh_per_unit": op.std_kwh_per_unit, "yield_pct": op.yield_pct,
            "quality_standard": op.quality_standard, "rework_to": op.rework_to,
            "after": None if op.after is None else ";".join(str(n) for n in op.after),
        }
        for op in version.operations
    ])
    return True


def _check_work_centers(conn: Connection, version: RoutingVersion) -> None:
    wanted = sorted({op.work_center for op in version.operations})
    known = set(conn.execute(select(work_centers_table.c.code).where(work_centers_table.c.code.in_(wanted))).scalars())
    for op in version.operations:
        if op.work_center not in known:
            raise RoutingError(f"{version.what}: operation {op.number} names unknown work center {op.work_center}")


def _set_state(
    conn: Connection, item: str, revision: str, target: VersionState, supersede: bool = False
) -> RoutingVersion:
    bump_generation(conn, "routing")  # first: serialises releases (row lock) before anything is checked
    version = get_routing(conn, item, revision)
    check_transition(version.what, version.state, target)
    now = utcnow()
    values: dict[str, Any] = {"state": target.value}
    if target == VersionState.RELEASED:
        if supersede:
            c = routing_versions.c
            for other in routing_versions_of(conn, item):
                end = superseded_end(version.valid_from, other.valid_from, other.valid_to)
                if other.state == VersionState.RELEASED and end is not None:
                    conn.execute(update(routing_versions).where(c.item == item, c.revision == other.revision)
                                 .values(valid_to=end))
        others = [
            (v.revision, v.valid_from, v.valid_to)
            for v in routing_versions_of(conn, item) if v.state == VersionState.RELEASED
        ]
        check_no_overlap(version.what, revision, version.valid_from, version.valid_to, others)
        values["released_at"] = now
    else:
        values["obsoleted_at"] = now
    conn.execute(update(routing_versions)
                 .where(routing_versions.c.item == item, routing_versions.c.revision == revision).values(**values))
    return get_routing(conn, item, revision)


def release_routing(conn: Connection, item: str, revision: str, *, supersede: bool = False) -> RoutingVersion:
    """Release a draft revision: refused when its window overlaps another released revision of the item,
    unless ``supersede`` end-dates an earlier-starting one to the day before this one starts."""
    return _set_state(conn, item, revision, VersionState.RELEASED, supersede)


def obsolete_routing(conn: Connection, item: str, revision: str) -> RoutingVersion:
    return _set_state(conn, item, revision, VersionState.OBSOLETE)
