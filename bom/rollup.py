"""Standard cost roll-up: materials at ledger cost (made items rolled up recursively) + routing conversion.

Per unit of the item, for a lot of ``qty`` (SPEC section 2, used for variances when an order closes):
- material: for each component of ``operation_materials`` (phantoms exploded through, scrap included),
  quantity per unit x unit cost. A component with its own released BOM or routing effective on the date
  is costed by rolling it up (for the quantity this lot needs of it); any other component at the ledger's
  moving-average cost (zero, and listed in ``missing_costs``, when the ledger has none). A fixed-quantity
  line is spread over the lot: its quantity / ``qty`` per unit.
- per operation of the effective routing: setup minutes once per lot (spread over ``qty``) and run minutes
  per unit, at the work center's labor and machine rates per hour; standard kWh per unit x tariff. Labor
  and machine include the setup share; ``setup`` shows that share (labor + machine) on its own.
- Yield % is not applied (the standard is per good unit at the routed times).

Figures are exact ``Decimal`` quantized to 6 places per unit; the total is the sum of the four elements.
``to_json`` (the CLI's table and ``--json``) shows money in cents and unit costs to at most 6 places.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

from bom.explosion import operation_materials
from bom.model import BomError, BomVersion, CycleError
from bom.structure import BomLookup
from mes_common.money import fmt_qty, to_cents
from routing.model import RoutingVersion, WorkCenter

PLACES = Decimal("0.000001")
SIXTY = Decimal(60)
ZERO = Decimal(0)
_CONTEXT = Context(prec=38)


@dataclass(frozen=True, slots=True)
class OperationCost:
    labor: Decimal
    machine: Decimal
    energy: Decimal
    setup: Decimal

    @property
    def total(self) -> Decimal:
        return self.labor + self.machine + self.energy


@dataclass(frozen=True, slots=True)
class MaterialCost:
    component: str
    operation: int | None
    qty_per_unit: Decimal
    unit_cost: Decimal
    amount: Decimal
    source: str  # "average" (ledger), "rollup" (made item), "missing" (no cost known)


@dataclass(frozen=True, slots=True)
class CostRollup:
    item: str
    qty: Decimal
    as_of: date
    bom_revision: str | None
    routing_revision: str | None
    material: Decimal
    labor: Decimal
    machine: Decimal
    energy: Decimal
    total: Decimal
    per_operation: dict[int, OperationCost] = field(default_factory=dict)
    materials: tuple[MaterialCost, ...] = ()
    missing_costs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Money as decimal strings in cents ("4.00"), unit costs to at most 6 places and at least 2
        ("0.10", "0.123457"), quantities without trailing zeros ("4")."""
        return {
            "item": self.item, "qty": qty_text(self.qty), "as_of": self.as_of.isoformat(),
            "bom_revision": self.bom_revision, "routing_revision": self.routing_revision,
            "material": money_text(self.material), "labor": money_text(self.labor),
            "machine": money_text(self.machine), "energy": money_text(self.energy), "total": money_text(self.total),
            "per_operation": {
                str(op): {"labor": money_text(c.labor), "machine": money_text(c.machine),
                          "energy": money_text(c.energy), "setup": money_text(c.setup), "total": money_text(c.total)}
                for op, c in sorted(self.per_operation.items())
            },
            "materials": [
                {"component": m.component, "operation": m.operation, "qty_per_unit": qty_text(m.qty_per_unit),
                 "unit_cost": unit_cost_text(m.unit_cost), "amount": money_text(m.amount), "source": m.source}
                for m in self.materials
            ],
            "missing_costs": list(self.missing_costs),
        }


def money_text(value: Decimal) -> str:
    """An amount in the currency's cents, half up: ``Decimal('4')`` -> ``'4.00'``."""
    return format(to_cents(value), "f")


def unit_cost_text(value: Decimal) -> str:
    """A unit cost rounded half up to 6 places, trailing zeros dropped down to cents: 4 -> '4.00',
    0.1 -> '0.10', 0.1234567 -> '0.123457' (never '4' or '0.1', which read as quantities)."""
    with localcontext(_CONTEXT):
        text = format(value.quantize(PLACES, rounding=ROUND_HALF_UP) + ZERO, "f")
    whole, _, places = text.partition(".")
    places = places.rstrip("0").ljust(2, "0")
    return f"{whole}.{places}"


def qty_text(value: Decimal) -> str:
    """A quantity rounded half up to 6 places, without trailing zeros."""
    with localcontext(_CONTEXT):
        return fmt_qty(value.quantize(PLACES, rounding=ROUND_HALF_UP) + ZERO)


def _q(value: Decimal) -> Decimal:
    return value.quantize(PLACES)


def conversion_cost(
    routing: RoutingVersion, centers: Mapping[str, WorkCenter], qty: Decimal
) -> dict[int, OperationCost]:
    """Per-unit labor, machine, energy (and the setup share) of each operation, for a lot of ``qty``."""
    result: dict[int, OperationCost] = {}
    with localcontext(_CONTEXT):
        for op in routing.operations:
            wc = centers.get(op.work_center)
            if wc is None:
                raise BomError(f"{routing.what}: operation {op.number} names unknown work center {op.work_center}")
            setup_min = op.setup_min / qty
            minutes = setup_min + op.run_min_per_unit
            labor = minutes * wc.labor_rate / SIXTY
            machine = minutes * wc.machine_rate / SIXTY
            setup = setup_min * (wc.labor_rate + wc.machine_rate) / SIXTY
            energy = op.std_kwh_per_unit * wc.energy_tariff
            result[op.number] = OperationCost(_q(labor), _q(machine), _q(energy), _q(setup))
    return result


def roll_up(
    item: str,
    as_of: date,
    qty: Decimal,
    boms: BomLookup,
    routing_of: Callable[[str, date], RoutingVersion | None],
    centers: Mapping[str, WorkCenter],
    average_cost: Callable[[str], Decimal | None],
    _path: tuple[str, ...] = (),
) -> CostRollup:
    """The pure roll-up over lookups (see the module docstring for the rules)."""
    if not isinstance(qty, Decimal) or qty <= 0:
        raise BomError(f"roll-up of {item}: quantity must be a positive decimal, got {qty!r}")
    if item in _path:
        raise CycleError([*_path, item], as_of)
    path = (*_path, item)
    bom: BomVersion | None = boms.effective(item, as_of)
    routing = routing_of(item, as_of)
    if bom is None and routing is None:
        raise BomError(f"{item} has no released BOM or routing effective on {as_of.isoformat()}")
    materials: list[MaterialCost] = []
    missing: set[str] = set()
    with localcontext(_CONTEXT):
        if bom is not None:
            for op, needs in operation_materials(boms, bom, as_of).items():
                for need in needs:
                    per_unit = need.qty_per_unit / qty if need.fixed_qty else need.qty_per_unit
                    if boms.effective(need.component, as_of) is not None or routing_of(need.component, as_of):
                        lot = need.qty_per_unit if need.fixed_qty else need.qty_per_unit * qty
                        sub = roll_up(need.component, as_of, lot, boms, routing_of, centers, average_cost, path)
                        unit, source = sub.total, "rollup"
                        missing.update(sub.missing_costs)
                    else:
                        found = average_cost(need.component)
                        unit, source = (found, "average") if found is not None else (ZERO, "missing")
                        if found is None:
                            missing.add(need.component)
                    materials.append(MaterialCost(need.component, op, per_unit, unit, per_unit * unit, source))
        per_operation = conversion_cost(routing, centers, qty) if routing is not None else {}
        material = _q(sum((m.amount for m in materials), ZERO))
        labor = sum((c.labor for c in per_operation.values()), ZERO)
        machine = sum((c.machine for c in per_operation.values()), ZERO)
        energy = sum((c.energy for c in per_operation.values()), ZERO)
    materials.sort(key=lambda m: (m.operation is None, m.operation or 0, m.component))
    return CostRollup(
        item, qty, as_of, bom.revision if bom else None, routing.revision if routing else None,
        material, labor, machine, energy, material + labor + machine + energy,
        per_operation, tuple(materials), tuple(sorted(missing)),
    )


def leaves(
    boms: BomLookup, routing_of: Callable[[str, date], RoutingVersion | None], item: str, as_of: date
) -> set[str]:
    """Every bought component under ``item`` (one ledger query for all of them)."""
    leaves: set[str] = set()
    seen: set[str] = set()
    stack = [item]
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        bom = boms.effective(code, as_of)
        if bom is None:
            if routing_of(code, as_of) is None:
                leaves.add(code)
            continue
        stack.extend(bom.columns.components)
    return leaves
