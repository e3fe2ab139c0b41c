"""What a scan terminal shows for a barcode: the order, its versions, the operation waiting at the terminal's work
center, its quality standard and how many units wait there.

A barcode is a work order id or a serial number of one. Refusals name the barcode, the order, the work centers and
what waits where, so the operator can act on them.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mes_common.errors import DomainError
from mes_common.money import fmt_qty
from routing.repository import find_routing
from wip_costing.model import OrderStatus, UnknownOrder
from wip_costing.repository import SnapshotCache, load_snapshot, serial_orders
from wip_costing.tables import wo_operations, work_orders


class UnknownBarcode(UnknownOrder):
    """A barcode that is neither a work order nor a serial number of one."""


class NothingToReport(DomainError):
    """The order is known but nothing can be reported for it at this terminal (closed, other work centers, none
    waiting)."""


def scan_view(conn: Connection, barcode: str, work_centers: Set[str] | None,
              snapshots: SnapshotCache | None = None) -> dict[str, Any]:
    """The order behind ``barcode`` and the operation waiting at one of ``work_centers`` (None: any)."""
    serial: str | None = None
    row = conn.execute(select(work_orders).where(work_orders.c.id == barcode)).first()
    if row is None:
        order_id = serial_orders(conn, [barcode]).get(barcode)
        if order_id is None:
            raise UnknownBarcode(f"barcode {barcode!r} is neither a work order nor a serial number of one")
        serial = barcode
        row = conn.execute(select(work_orders).where(work_orders.c.id == order_id)).one()
    if row.status in (OrderStatus.COMPLETED.value, OrderStatus.CLOSED.value):
        raise NothingToReport(f"work order {row.id} is {row.status}: nothing more can be reported on it")
    snapshot = load_snapshot(row, snapshots)
    c = wo_operations.c
    waiting = {r.operation: r.fp_qty + r.rw_qty
               for r in conn.execute(select(c.operation, c.fp_qty, c.rw_qty).where(c.work_order == row.id))}
    here = [op for op in snapshot.operations if work_centers is None or op.work_center in work_centers]
    if not here:
        route = ", ".join(f"{op.number} at {op.work_center}" for op in snapshot.operations)
        raise NothingToReport(f"work order {row.id} has no operation at {', '.join(sorted(work_centers or ()))} "
                              f"(its operations: {route})")
    ready = [op for op in here if waiting.get(op.number, 0) > 0]
    if not ready:
        where = ", ".join(f"operation {op.number} at {op.work_center}" for op in here)
        elsewhere = ", ".join(f"{fmt_qty(q)} at operation {n}" for n, q in sorted(waiting.items()) if q > 0)
        raise NothingToReport(f"work order {row.id}: no units are waiting at {where}"
                              f" (waiting: {elsewhere or 'none anywhere'})")
    op = ready[0]
    routing = find_routing(conn, snapshot.item, snapshot.routing_revision)
    quality = routing.operation(op.number).quality_standard if routing is not None else ""
    return {
        "work_order": row.id, "item": snapshot.item, "qty": fmt_qty(snapshot.qty),
        "bom_revision": snapshot.bom_revision, "routing_revision": snapshot.routing_revision,
        "operation": op.number, "work_center": op.work_center, "quality_standard": quality,
        "waiting": fmt_qty(waiting[op.number]), "serial": serial,
    }


def operation_centers(conn: Connection, order_id: str, snapshots: SnapshotCache | None = None
                      ) -> dict[int, str] | None:
    """Each operation of ``order_id`` and its work center, as frozen at release (None: no such order). Never changes
    once the order exists, so callers may keep it."""
    row = conn.execute(select(work_orders.c.id, work_orders.c.released_at, work_orders.c.snapshot)
                       .where(work_orders.c.id == order_id)).first()
    if row is None:
        return None
    return {op.number: op.work_center for op in load_snapshot(row, snapshots).operations}
