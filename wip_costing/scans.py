"""Work orders scanned at a machine's terminal: which order a machine without a job tag is working on.

An operator scans a work-order barcode at the terminal beside a machine; from then on the machine's counts
belong to that order, until the next scan. Collectors read the latest scan per machine (``current_scans``).

Invariants:
- A scan names a machine that belongs to a work center (master data), and an order that exists, is not
  completed or closed, and has an operation at that work center; otherwise it is refused, naming what is
  wrong, and nothing is written.
- Scans are only ever appended (``machine_scans`` refuses UPDATE and DELETE); a machine's current order is its
  latest scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from mes_common.db import utcnow
from mes_common.errors import DomainError
from routing.tables import work_center_machines, work_center_terminals
from wip_costing.model import OrderStatus, UnknownOrder, WipError
from wip_costing.repository import SnapshotCache, load_snapshot
from wip_costing.tables import machine_scans, work_orders


class ScanRefused(DomainError):
    """A scan that cannot be taken: the reason names the machine, terminal or order."""


@dataclass(frozen=True)
class Scan:
    machine: str
    work_order: str
    operation: int
    work_center: str
    operator: str | None
    terminal: str | None
    scanned_at: datetime
    id: int


def record_scan(conn: Connection, machine: str, work_order: str, *, operator: str | None = None,
                terminal: str | None = None, at: datetime | None = None, snapshots: SnapshotCache | None = None
                ) -> Scan:
    """Validate and append one scan (in the caller's transaction); returns it with the operation it runs."""
    center = conn.execute(
        select(work_center_machines.c.work_center).where(work_center_machines.c.machine == machine)
    ).scalar()
    if center is None:
        raise ScanRefused(f"machine {machine!r} belongs to no work center: list it in the work centers' "
                          "'machines' column (mes-bridge routing import work-centers)")
    if terminal is not None:
        terminal_center = conn.execute(
            select(work_center_terminals.c.work_center).where(work_center_terminals.c.terminal == terminal)
        ).scalar()
        if terminal_center is None:
            raise ScanRefused(f"terminal {terminal!r} belongs to no work center")
        if terminal_center != center:
            raise ScanRefused(f"terminal {terminal} belongs to {terminal_center}, machine {machine} to {center}")
    row = conn.execute(
        select(work_orders.c.id, work_orders.c.status, work_orders.c.released_at, work_orders.c.snapshot)
        .where(work_orders.c.id == work_order)
    ).first()
    if row is None:
        raise UnknownOrder(f"work order {work_order!r} does not exist (scanned at machine {machine})")
    if row.status in (OrderStatus.COMPLETED.value, OrderStatus.CLOSED.value):
        raise ScanRefused(f"work order {work_order} is {row.status}: nothing more can be produced on it "
                          f"(scanned at machine {machine})")
    snapshot = load_snapshot(row, snapshots)
    try:
        operation = snapshot.op_at(center)
    except WipError as exc:
        raise ScanRefused(f"work order {work_order} has no operation at {center}, the work center of machine "
                          f"{machine}: {exc.message}") from exc
    when = at or utcnow()
    new_id = conn.execute(insert(machine_scans).values(
        machine=machine, work_order=work_order, operator=operator, terminal=terminal, scanned_at=when,
    )).inserted_primary_key
    assert new_id is not None
    return Scan(machine, work_order, operation.number, center, operator, terminal, when, int(new_id[0]))


def current_scans(conn: Connection, machines: Iterable[str]) -> dict[str, str]:
    """The latest scanned work order of each of ``machines`` that has been scanned at all."""
    wanted = sorted(set(machines))
    if not wanted:
        return {}
    s = machine_scans.c
    latest = (select(s.machine, func.max(s.id).label("id")).where(s.machine.in_(wanted))
              .group_by(s.machine).subquery())
    rows = conn.execute(select(s.machine, s.work_order).join(latest, s.id == latest.c.id))
    return {r.machine: r.work_order for r in rows}
