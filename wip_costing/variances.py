"""Closing a work order: the residue left in its WIP pools goes to variance accounts, split by cause (pure).

Split rule. Actual costs follow the units (finished goods are received at actual cost), so what is left on
an order at close is the value of the units still waiting, which the order will never produce. For each cost
element e, with R_e the residue of e and W_e the STANDARD value of e of those waiting units (standard cost
roll-up from the frozen snapshot: for a unit waiting at operation j, materials and run-time conversion of the
operations before j at release-time costs; setup is an order cost and has no per-unit standard):
- VAR-SCRAP takes min(R_e, W_e): what the abandoned units should have cost so far is a scrap/yield loss;
- the rest, R_e - min(R_e, W_e), is spending above standard on those units and goes to the cause account of
  e: material -> VAR-MATERIAL (usage), setup, labor and machine -> VAR-LABOR (efficiency), energy -> VAR-ENERGY.
The parts sum exactly to the residue, so WIP of a closed order is exactly zero.

``standard_analysis`` also compares, for information, the order's actual costs per element against the
standard roll-up for the quantity produced (it posts nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from mes_common.money import ZERO, to_cents
from mes_common.provenance import Provenance
from wip_costing.journal import ELEMENTS, Account, EntryKind, JournalEntry, JournalLine, wip_credit_lines
from wip_costing.model import OrderClosed, OrderSnapshot, OrderState, OrderStatus
from wip_costing.pools import Element

CAUSE_ACCOUNT = {
    Element.MATERIAL: Account.VAR_MATERIAL,
    Element.SETUP: Account.VAR_LABOR,
    Element.LABOR: Account.VAR_LABOR,
    Element.MACHINE: Account.VAR_LABOR,
    Element.ENERGY: Account.VAR_ENERGY,
}


def standard_per_unit(snapshot: OrderSnapshot) -> dict[int, dict[Element, Decimal]]:
    """Per operation: the standard cost per unit of that operation's own work, by element (exact)."""
    out: dict[int, dict[Element, Decimal]] = {}
    with localcontext() as ctx:
        ctx.prec = 38
        for op in snapshot.operations:
            out[op.number] = {
                Element.MATERIAL: sum((m.qty_per_unit * m.std_unit_cost for m in op.materials), ZERO),
                Element.SETUP: ZERO,
                Element.LABOR: op.run_min_per_unit * op.labor_rate / 60,
                Element.MACHINE: op.run_min_per_unit * op.machine_rate / 60,
                Element.ENERGY: op.std_kwh_per_unit * op.energy_tariff,
            }
    return out


def standard_of_waiting(snapshot: OrderSnapshot, state: OrderState) -> dict[Element, Decimal]:
    per_op = standard_per_unit(snapshot)
    exact = dict.fromkeys(Element, ZERO)
    before: dict[Element, Decimal] = dict.fromkeys(Element, ZERO)
    with localcontext() as ctx:
        ctx.prec = 38
        for op in snapshot.operations:
            waiting = state.ops[op.number].waiting
            for e in Element:
                exact[e] += waiting * before[e]
            for e in Element:
                before[e] += per_op[op.number][e]
    return {e: to_cents(v) for e, v in exact.items()}


def close(snapshot: OrderSnapshot, state: OrderState, when: datetime) -> tuple[OrderState, JournalEntry | None]:
    """The closed order state and the entry moving its residue to variances (None when there is none)."""
    order = snapshot.order_id
    if state.status == OrderStatus.CLOSED:
        raise OrderClosed(f"work order {order} is already closed")
    work = state.copy()
    standard = standard_of_waiting(snapshot, work)
    residue: dict[Element, Decimal] = dict.fromkeys(Element, ZERO)
    lines: list[JournalLine] = []
    for op in snapshot.operations:
        st = work.ops[op.number]
        for pool in (st.rework, st.first_pass):
            if pool.values:
                lines += wip_credit_lines(pool.values, order=order, operation=op.number, work_center=op.work_center)
                for (element, _), amount in pool.values.items():
                    residue[element] += amount
        st.written_off += st.waiting
        st.rework.qty = st.first_pass.qty = ZERO
        st.rework.values.clear()
        st.first_pass.values.clear()
    work.status = OrderStatus.CLOSED
    # One line per variance account, with the split of what it absorbs by element.
    variances: dict[Account, list[Decimal]] = {}
    for element, amount in residue.items():
        to_scrap = min(amount, standard[element]) if amount > 0 else ZERO
        for account, part in ((Account.VAR_SCRAP, to_scrap), (CAUSE_ACCOUNT[element], amount - to_scrap)):
            if part:
                variances.setdefault(account, [ZERO] * len(ELEMENTS))[ELEMENTS.index(element)] += part
    for account, split in variances.items():
        lines.append(JournalLine(account, debit=sum(split, ZERO), work_order=order, provenance=Provenance.MANUAL,
                                 split=tuple(split)))
    if not lines:
        return work, None
    return work, JournalEntry(EntryKind.CLOSE, when, None, order, lines)


@dataclass(frozen=True, slots=True)
class StandardComparison:
    produced: Decimal
    actual: dict[Element, Decimal]
    standard: dict[Element, Decimal]

    @property
    def difference(self) -> dict[Element, Decimal]:
        return {e: self.actual.get(e, ZERO) - self.standard.get(e, ZERO) for e in Element}


def standard_analysis(
    snapshot: OrderSnapshot, produced: Decimal, actual: Mapping[Element, Decimal]
) -> StandardComparison:
    """Actual costs charged to the order vs the standard roll-up for ``produced`` units (setup at standard)."""
    per_op = standard_per_unit(snapshot)
    standard = dict.fromkeys(Element, ZERO)
    with localcontext() as ctx:
        ctx.prec = 38
        for op in snapshot.operations:
            for e in Element:
                standard[e] += per_op[op.number][e] * produced
            standard[Element.SETUP] += op.setup_min * (op.labor_rate + op.machine_rate) / 60
    return StandardComparison(produced, dict(actual), {e: to_cents(v) for e, v in standard.items()})
