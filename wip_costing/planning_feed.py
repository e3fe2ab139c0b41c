"""What open work orders will still draw from stores: the planner's "open WIP" (SPEC section 2).

``remaining_needs(snapshot, state)`` is pure; ``open_component_needs(conn)`` reads every released or
in-progress order (completed and closed orders need nothing more) and sums them per component.

Rules, from the order's frozen snapshot (materials per operation, per ONE unit, scrap included) and the
cost rules of ``costing.complete``:
- a component of operation k is still needed for every first-pass unit that has not yet been processed at
  k and can still get there: the first-pass units waiting at k and at the operations before k on the
  order's flow (first operation, then each operation's ``next_op``). This is the order quantity minus the
  units processed first-pass at k, less the units that already left the first-pass flow before k:
  scrapped units never reach k, and units sent to rework stay flagged and never consume components again;
  counting either would hold stock for issues that can never happen;
- a fixed quantity is still needed while the operation has had no completion (it is issued with the first);
- each (order, operation, component) is rounded to 6 places half up, as the issue itself would be.
Quantities are exact ``Decimal``; nothing is locked (a read for planning must not hold the shop floor's
row locks), and each order's figures come from one consistent statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mes_common.money import ZERO
from wip_costing.costing import component_qty
from wip_costing.model import OrderSnapshot, OrderStatus
from wip_costing.repository import SnapshotCache, load_snapshot
from wip_costing.tables import wo_operations, work_orders

OPEN = (OrderStatus.RELEASED.value, OrderStatus.IN_PROGRESS.value)


@dataclass(frozen=True, slots=True)
class OpProgress:
    """What the needs of one operation depend on: first-pass units waiting there, and whether it has had
    its first completion (setup charged, fixed quantities issued)."""

    first_pass_waiting: Decimal
    started: bool


def flow(snapshot: OrderSnapshot) -> list[int]:
    """The operations first-pass units pass through, in order (first, then ``next_op`` links)."""
    order: list[int] = []
    number: int | None = snapshot.first
    while number is not None and number not in order:
        order.append(number)
        number = snapshot.op(number).next_op
    return order


def remaining_needs(snapshot: OrderSnapshot, progress: Mapping[int, OpProgress]) -> dict[str, Decimal]:
    """Components one order will still consume, per component (see the module docstring for the rules)."""
    upstream: dict[int, Decimal] = {}
    running = ZERO
    for number in flow(snapshot):
        running += progress[number].first_pass_waiting if number in progress else ZERO
        upstream[number] = running
    needs: dict[str, Decimal] = {}
    for op in snapshot.operations:
        # Off the first-pass flow only the units waiting there could still be first-pass (none in practice).
        units = upstream.get(op.number)
        state = progress.get(op.number)
        if units is None:
            units = state.first_pass_waiting if state is not None else ZERO
        started = state is not None and state.started
        for m in op.materials:
            qty = m.qty_per_unit * units + (ZERO if started else m.fixed_qty)
            if qty > 0:
                needs[m.component] = needs.get(m.component, ZERO) + component_qty(qty)
    return needs


def open_component_needs(conn: Connection, snapshots: SnapshotCache | None = None) -> dict[str, Decimal]:
    """Components that released and in-progress work orders will still draw from stores, per component."""
    o, w = work_orders.c, wo_operations.c
    progress: dict[str, dict[int, OpProgress]] = {}
    rows = conn.execute(
        select(w.work_order, w.operation, w.fp_qty, w.setup_charged)
        .join(work_orders, o.id == w.work_order)
        .where(o.status.in_(OPEN))
    )
    for r in rows:
        progress.setdefault(r.work_order, {})[r.operation] = OpProgress(Decimal(r.fp_qty), bool(r.setup_charged))
    if not progress:
        return {}
    total: dict[str, Decimal] = {}
    for order in conn.execute(select(o.id, o.released_at, o.snapshot).where(o.status.in_(OPEN)).order_by(o.id)):
        if order.id not in progress:
            continue  # released after the first statement: its operations were not read with the others
        snapshot = load_snapshot(order, snapshots)
        for component, qty in remaining_needs(snapshot, progress[order.id]).items():
            total[component] = total.get(component, ZERO) + qty
    return dict(sorted(total.items()))
