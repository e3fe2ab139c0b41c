"""Releasing a work order (freezing what costing needs) and closing it (residue to variances).

Release invariants: the BOM and routing versions effective on the release date are frozen into the order's
snapshot with the work-center rates, supply locations, materials per operation (phantoms exploded through;
lines without an operation are consumed at the first operation) and the standard unit cost of each component
(standard cost roll-up at release). Later revisions or rate changes never change the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from sqlalchemy.engine import Connection

from bom import repository as bom_repo
from bom.explosion import operation_materials
from bom.standard_cost import standard_cost
from ledger import repository as ledger_repo
from ledger.model import ItemKind, LocationKind
from ledger.units import check_unit
from mes_common.db import utcnow
from mes_common.errors import DomainError
from mes_common.limits import CODE_LENGTH, MAX_QTY
from mes_common.money import ZERO, fmt, fmt_qty
from routing import repository as routing_repo
from wip_costing import journal_writer
from wip_costing import repository as repo
from wip_costing.journal import Account, JournalEntry
from wip_costing.model import (
    MaterialSpec,
    OpSpec,
    OrderSnapshot,
    OrderState,
    OrderStatus,
    UnknownOrder,
    WipError,
)
from wip_costing.pools import Element
from wip_costing.reports import element_balances
from wip_costing.tables import journal_lines
from wip_costing.variances import StandardComparison, close, standard_analysis


def build_snapshot(conn: Connection, order_id: str, item: str, qty: Decimal, on: date,
                   receiving_location: str | None, caches: ReleaseCaches | None = None) -> OrderSnapshot:
    found = ledger_repo.get_items(conn, [item])
    if item not in found:
        raise WipError(f"work order {order_id}: unknown item {item}")
    routing = routing_repo.effective_routing(conn, item, on)
    if routing is None:
        raise WipError(f"work order {order_id}: no released routing of {item} is effective on {on.isoformat()}")
    bom = bom_repo.effective_bom(conn, item, on)
    boms = bom_repo.released_index(conn, caches.bom if caches else None)
    needs = operation_materials(boms, bom, on) if bom is not None else {}
    order = routing.in_order()
    numbers = {op.number for op in order}
    for op_no in needs:
        if op_no is not None and op_no not in numbers:
            raise WipError(f"work order {order_id}: BOM {item} rev {bom.revision if bom else '?'} consumes "
                           f"{', '.join(n.component for n in needs[op_no])} at operation {op_no}, which routing "
                           f"{item} rev {routing.revision} does not have")
    std_cost: dict[str, Decimal] = {}
    if bom is not None:
        try:
            for m in standard_cost(conn, item, on, qty, boms_cache=caches.bom if caches else None,
                                   routings_cache=caches.routings if caches else None).materials:
                std_cost.setdefault(m.component, m.unit_cost)
        except DomainError:
            std_cost = ledger_repo.average_costs(conn, [n.component for ns in needs.values() for n in ns])
    centers = routing_repo.work_centers(conn, {op.work_center for op in order}, as_of=on)
    default_supply: str | None = None
    if receiving_location is None:
        kind = LocationKind.FINISHED if found[item].kind is ItemKind.FINISHED else LocationKind.STORES
        receiving_location = ledger_repo.default_location(conn, kind)
    elif receiving_location not in ledger_repo.get_locations(conn, [receiving_location]):
        raise WipError(f"work order {order_id}: unknown receiving location {receiving_location}")
    specs = []
    for position, op in enumerate(order):
        wc = centers.get(op.work_center)
        if wc is None:
            raise WipError(f"work order {order_id}: operation {op.number} names unknown work center {op.work_center}")
        supply = wc.supply_location
        if supply is None:
            default_supply = default_supply or ledger_repo.default_location(conn, LocationKind.STORES)
            supply = default_supply
        lines = list(needs.get(op.number, []))
        if position == 0:
            lines += needs.get(None, [])
        materials = tuple(
            MaterialSpec(n.component, ZERO if n.fixed_qty else n.qty_per_unit, n.qty_per_unit if n.fixed_qty else ZERO,
                         std_cost.get(n.component, ZERO))
            for n in lines
        )
        # Units flow through every operation in the routing's topological order (ties by number): the branches
        # of a DAG are visited one after the other, so each collects its conversion cost, and the join sees
        # the units once every branch before it in that order has passed them on.
        next_op = order[position + 1].number if position + 1 < len(order) else None
        specs.append(OpSpec(
            op.number, op.work_center, op.setup_min, op.run_min_per_unit, op.std_kwh_per_unit, wc.labor_rate,
            wc.machine_rate, wc.energy_tariff, supply, op.rework_to, next_op, materials,
        ))
    return OrderSnapshot(order_id, item, qty, receiving_location, bom.revision if bom else None, routing.revision,
                         tuple(specs), found[item].uom)


def release_in(conn: Connection, order_id: str, item: str, qty: Decimal, on: date | None, due_date: date | None,
               receiving_location: str | None, serials: Sequence[str], caches: ReleaseCaches | None = None
               ) -> OrderSnapshot:
    if not order_id or order_id != order_id.strip():
        raise WipError(f"work order id {order_id!r} is empty or has surrounding spaces")
    if not isinstance(qty, Decimal) or qty <= 0:
        raise WipError(f"work order {order_id}: quantity must be positive, got {qty}")
    if qty > MAX_QTY or len(order_id) > CODE_LENGTH:
        raise WipError(f"work order {order_id[:64]}: the id is at most {CODE_LENGTH} characters and the quantity "
                       f"at most {MAX_QTY:,}")
    if repo.order_row(conn, order_id) is not None:
        raise WipError(f"work order {order_id} already exists")
    now = utcnow()
    day = on or now.date()
    snapshot = build_snapshot(conn, order_id, item, qty, day, receiving_location, caches)
    check_unit(qty, snapshot.uom, f"work order {order_id}: quantity")
    repo.insert_order(conn, snapshot, OrderState.released(snapshot), released_on=day, released_at=now,
                      due_date=due_date, serials=serials)
    return snapshot


class ReleaseCaches(Protocol):
    """The caches a release reads through (``wip_costing.unit_of_work.Caches``)."""

    bom: bom_repo.BomCache
    routings: routing_repo.RoutingCache


class UnitsWaiting(WipError):
    """Closing an order with units still waiting, without ``force``."""

    code = "units_waiting"


@dataclass(frozen=True)
class CloseResult:
    order_id: str
    entry: JournalEntry | None
    comparison: StandardComparison


def actual_costs(conn: Connection, order_id: str) -> dict[Element, Decimal]:
    """Costs charged to the order (material and conversion entries), by element."""
    c = journal_lines.c
    sums = conn.execute(element_balances(
        c.work_order == order_id, c.account == Account.WIP.value, c.kind.in_(["material", "conversion"]))).one()
    return {Element(name): Decimal(value) for name, value in sums._mapping.items()}


def close_in(conn: Connection, order_id: str, snapshots: repo.SnapshotCache | None = None, *,
             force: bool = False) -> CloseResult:
    """Close the order; one with units still waiting only when ``force``d (else ``UnitsWaiting``, naming them
    and the value that would go to variance)."""
    orders = repo.lock_orders(conn, [order_id], snapshots)
    if order_id not in orders:
        raise UnknownOrder(f"unknown work order {order_id}")
    snapshot, state = orders[order_id]
    waiting = [(op, st.waiting, st.first_pass.value + st.rework.value) for op, st in sorted(state.ops.items())
               if st.waiting]
    if waiting and not force and state.status is not OrderStatus.CLOSED:
        units = sum((qty for _, qty, _ in waiting), ZERO)
        value = sum((v for _, _, v in waiting), ZERO)
        where = ", ".join(f"{fmt_qty(qty)} at operation {op} worth {fmt(v)}" for op, qty, v in waiting)
        raise UnitsWaiting(f"work order {order_id} has {fmt_qty(units)} units still waiting ({where}): closing "
                           f"would write them off and move {fmt(value)} to variance accounts; close it with --force "
                           "to do so")
    now = utcnow()
    closed, entry = close(snapshot, state, now)
    if entry is not None:
        journal_writer.insert_journal(conn, [(f"close:{order_id}", entry)], [], now)
    repo.save_states(conn, [closed], closed_at=now)
    comparison = standard_analysis(snapshot, closed.produced, actual_costs(conn, order_id))
    return CloseResult(order_id, entry, comparison)
