"""Work orders: the frozen snapshot costing needs, and the per-operation state (quantities and pools).

Invariants:
- A snapshot is taken at release and never changes: later BOM or routing revisions do not touch an order.
- Per operation: received = waiting + completed good + scrapped + sent to rework; waiting is the first-pass
  pool plus the rework pool; a pool's value is zero exactly when its quantity is zero.
- The first operation's first-pass pool starts with the order quantity at zero value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from mes_common.errors import DomainError
from mes_common.money import ZERO, fmt_qty
from wip_costing.pools import Pool


class OrderStatus(StrEnum):
    RELEASED = "released"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CLOSED = "closed"


class WipError(DomainError):
    code = "wip_error"


class UnknownOrder(WipError):
    code = "unknown_order"


class OrderClosed(WipError):
    code = "order_closed"


class UnknownOperation(WipError):
    code = "unknown_operation"


class MoreThanWaiting(WipError):
    code = "more_than_waiting"

    def __init__(self, order: str, operation: int, requested: Decimal, waiting: Decimal) -> None:
        super().__init__(
            f"work order {order} operation {operation}: completion of {fmt_qty(requested)} units exceeds the "
            f"{fmt_qty(waiting)} waiting"
        )
        self.order = order
        self.operation = operation
        self.requested = requested
        self.waiting = waiting


class NoReworkOperation(WipError):
    code = "no_rework_operation"


@dataclass(frozen=True, slots=True)
class MaterialSpec:
    """A component consumed at an operation, per ONE parent unit (scrap % included) plus a fixed quantity."""

    component: str
    qty_per_unit: Decimal
    fixed_qty: Decimal = ZERO
    # Standard unit cost at release (ledger moving average), used only by the close variance split.
    std_unit_cost: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class OpSpec:
    number: int
    work_center: str
    setup_min: Decimal
    run_min_per_unit: Decimal
    std_kwh_per_unit: Decimal
    labor_rate: Decimal
    machine_rate: Decimal
    energy_tariff: Decimal
    supply_location: str
    rework_to: int | None = None
    next_op: int | None = None
    materials: tuple[MaterialSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """What costing needs from the BOM and routing versions effective at release, frozen."""

    order_id: str
    item: str
    qty: Decimal
    receiving_location: str
    bom_revision: str | None
    routing_revision: str
    operations: tuple[OpSpec, ...]
    uom: str = ""  # the item's unit of measure: a completion's quantities keep to its decimals ("": six places)
    _by_number: dict[int, OpSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_number", {o.number: o for o in self.operations})
        if not self.operations:
            raise WipError(
                f"work order {self.order_id}: routing {self.routing_revision} of {self.item} has no operations"
            )

    @property
    def first(self) -> int:
        return self.operations[0].number

    def op(self, number: int) -> OpSpec:
        found = self._by_number.get(number)
        if found is not None:
            return found
        numbers = ", ".join(str(o.number) for o in self.operations)
        raise UnknownOperation(
            f"work order {self.order_id}: operation {number} is not in routing {self.item} rev "
            f"{self.routing_revision} (operations {numbers})"
        )

    def op_at(self, work_center: str) -> OpSpec:
        found = [o for o in self.operations if o.work_center == work_center]
        if len(found) != 1:
            numbers = ", ".join(str(o.number) for o in found) or "none"
            raise UnknownOperation(
                f"work order {self.order_id}: cannot tell the operation from work center {work_center}: routing "
                f"{self.item} rev {self.routing_revision} has {len(found)} operations there ({numbers}); "
                "send the operation number"
            )
        return found[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "item": self.item,
            "qty": str(self.qty),
            "receiving_location": self.receiving_location,
            "bom_revision": self.bom_revision,
            "routing_revision": self.routing_revision,
            "uom": self.uom,
            "operations": [
                {
                    "number": o.number,
                    "work_center": o.work_center,
                    "setup_min": str(o.setup_min),
                    "run_min_per_unit": str(o.run_min_per_unit),
                    "std_kwh_per_unit": str(o.std_kwh_per_unit),
                    "labor_rate": str(o.labor_rate),
                    "machine_rate": str(o.machine_rate),
                    "energy_tariff": str(o.energy_tariff),
                    "supply_location": o.supply_location,
                    "rework_to": o.rework_to,
                    "next_op": o.next_op,
                    "materials": [
                        [m.component, str(m.qty_per_unit), str(m.fixed_qty), str(m.std_unit_cost)] for m in o.materials
                    ],
                }
                for o in self.operations
            ],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> OrderSnapshot:
        ops = tuple(
            OpSpec(
                number=int(o["number"]),
                work_center=o["work_center"],
                setup_min=Decimal(o["setup_min"]),
                run_min_per_unit=Decimal(o["run_min_per_unit"]),
                std_kwh_per_unit=Decimal(o["std_kwh_per_unit"]),
                labor_rate=Decimal(o["labor_rate"]),
                machine_rate=Decimal(o["machine_rate"]),
                energy_tariff=Decimal(o["energy_tariff"]),
                supply_location=o["supply_location"],
                rework_to=o["rework_to"],
                next_op=o["next_op"],
                materials=tuple(
                    MaterialSpec(m[0], Decimal(m[1]), Decimal(m[2]), Decimal(m[3])) for m in o["materials"]
                ),
            )
            for o in data["operations"]
        )
        return OrderSnapshot(
            order_id=data["order_id"],
            item=data["item"],
            qty=Decimal(data["qty"]),
            receiving_location=data["receiving_location"],
            bom_revision=data["bom_revision"],
            routing_revision=data["routing_revision"],
            operations=ops,
            uom=data.get("uom", ""),
        )


@dataclass
class OpState:
    """Quantities and the two waiting pools of one operation of one order."""

    operation: int
    work_center: str
    received: Decimal = ZERO
    completed_good: Decimal = ZERO
    scrapped: Decimal = ZERO
    reworked: Decimal = ZERO
    # Units still waiting when the order was closed (their value went to variances).
    written_off: Decimal = ZERO
    setup_charged: bool = False
    first_pass: Pool = field(default_factory=Pool)
    rework: Pool = field(default_factory=Pool)

    @property
    def waiting(self) -> Decimal:
        return self.first_pass.qty + self.rework.qty

    def copy(self) -> OpState:
        return OpState(
            self.operation, self.work_center, self.received, self.completed_good, self.scrapped, self.reworked,
            self.written_off, self.setup_charged, self.first_pass.copy(), self.rework.copy(),
        )


@dataclass
class OrderState:
    """A work order's mutable side: status, quantities per operation, produced so far."""

    order_id: str
    status: OrderStatus
    ops: dict[int, OpState]
    produced: Decimal = ZERO

    @staticmethod
    def released(snapshot: OrderSnapshot) -> OrderState:
        ops = {o.number: OpState(o.number, o.work_center) for o in snapshot.operations}
        first = ops[snapshot.first]
        first.received = snapshot.qty
        first.first_pass.qty = snapshot.qty
        return OrderState(snapshot.order_id, OrderStatus.RELEASED, ops)

    @property
    def waiting(self) -> Decimal:
        return sum((s.waiting for s in self.ops.values()), ZERO)

    def copy(self) -> OrderState:
        return OrderState(self.order_id, self.status, {n: s.copy() for n, s in self.ops.items()}, self.produced)


def check_quantities(state: OrderState) -> list[str]:
    """Broken quantity invariants of ``state`` (empty when sound); tests and ``wo show`` call it."""
    problems = []
    for s in state.ops.values():
        out = s.completed_good + s.scrapped + s.reworked + s.written_off + s.waiting
        if s.received != out:
            problems.append(f"operation {s.operation}: received {s.received} != accounted for {out}")
        for name, pool in (("first-pass", s.first_pass), ("rework", s.rework)):
            if pool.qty < 0 or any(v < 0 for v in pool.values.values()):
                problems.append(f"operation {s.operation}: {name} pool negative")
            if pool.qty == 0 and pool.value != 0:
                problems.append(f"operation {s.operation}: empty {name} pool holds {pool.value}")
    return problems
