"""Energy in kWh per work order, operation, work center and machine, from the applied completions.

The kWh of a completion is what its energy cost was charged with (``costing.energy_kwh``): the meter's delta
when the event carries one, else the operation's standard kWh per unit × units processed. Figures are sums over
the recorded (applied) events, dated by source time, so "as of T" means the same as for the journal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mes_common.money import ZERO, fmt_qty
from wip_costing.costing import energy_kwh
from wip_costing.events import parse_event
from wip_costing.model import OrderSnapshot
from wip_costing.tables import operation_events, work_orders

NO_MACHINE = "(no machine)"  # completions typed or scanned, not read from a machine


@dataclass
class Energy:
    """kWh of a set of completions: in total, metered, standard (no meter), and per machine."""

    metered: Decimal = ZERO
    standard: Decimal = ZERO
    by_machine: dict[str, Decimal] = field(default_factory=dict)

    @property
    def kwh(self) -> Decimal:
        return self.metered + self.standard

    def add(self, machine: str | None, kwh: Decimal, metered: bool) -> None:
        if metered:
            self.metered += kwh
        else:
            self.standard += kwh
        key = machine or NO_MACHINE
        self.by_machine[key] = self.by_machine.get(key, ZERO) + kwh

    def to_json(self) -> dict[str, Any]:
        return {"kwh": fmt_qty(self.kwh), "metered_kwh": fmt_qty(self.metered), "standard_kwh": fmt_qty(self.standard),
                "by_machine": {m: fmt_qty(v) for m, v in sorted(self.by_machine.items())}}


def _completions(conn: Connection, orders: Iterable[str] | None, as_of: datetime | None) -> Any:
    c = operation_events.c
    query = select(c.work_order, c.operation, c.payload).order_by(c.source_time, c.event_id)
    if orders is not None:
        query = query.where(c.work_order.in_(list(orders)))
    if as_of is not None:
        query = query.where(c.source_time <= as_of)
    return conn.execute(query)


def energy_by(conn: Connection, group: tuple[str, ...], orders: Iterable[str] | None = None,
              as_of: datetime | None = None) -> dict[tuple[Any, ...], Energy]:
    """kWh grouped by any of ``work_order``, ``operation``, ``work_center``, ``machine`` (a tuple of them)."""
    snapshots: dict[str, OrderSnapshot] = {}
    out: dict[tuple[Any, ...], Energy] = {}
    for row in _completions(conn, orders, as_of):
        if row.work_order not in snapshots:
            text = conn.execute(select(work_orders.c.snapshot).where(work_orders.c.id == row.work_order)).scalar_one()
            snapshots[row.work_order] = OrderSnapshot.from_json(json.loads(text))
        spec = snapshots[row.work_order].op(row.operation)
        event = parse_event(json.loads(row.payload))
        kwh = energy_kwh(spec, event, event.processed)
        values = {"work_order": row.work_order, "operation": row.operation, "work_center": spec.work_center,
                  "machine": event.machine or NO_MACHINE}
        key = tuple(values[name] for name in group)
        out.setdefault(key, Energy()).add(event.machine, kwh, event.kwh is not None)
    return out


def order_energy(conn: Connection, order_id: str) -> tuple[Energy, dict[int, Energy]]:
    """One work order's kWh in total and per operation (each with its per-machine split)."""
    total = Energy()
    per_op: dict[int, Energy] = {}
    for (operation,), energy in energy_by(conn, ("operation",), [order_id]).items():
        per_op[operation] = energy
        total.metered += energy.metered
        total.standard += energy.standard
        for machine, kwh in energy.by_machine.items():
            total.by_machine[machine] = total.by_machine.get(machine, ZERO) + kwh
    return total, per_op
