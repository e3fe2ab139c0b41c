"""Cost rules one at a time: setup once per order, fixed quantities, labor coefficient with setup, energy,
close variance split, and the per-element view of the pools."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from mes_common.provenance import Provenance
from wip_costing.costing import apply_completion
from wip_costing.journal import Account, check_balanced
from wip_costing.model import MaterialSpec, OrderState, OrderStatus
from wip_costing.pools import Element
from wip_costing.variances import close

from .fakes import event, example_snapshot, example_stock

D = Decimal


def _sum(entries: list, account: Account, element: Element | None = None, **where: object) -> Decimal:
    """Signed sum of the ``account`` lines matching ``where``; of their ``element`` part when one is named."""
    return sum((line.debit - line.credit if element is None else line.element_amount(element)
                for e in entries for line in e.lines
                if line.account == account and all(getattr(line, k) == v for k, v in where.items())), D(0))


def _with_setup(setup: str = "15", fixed: str = "0"):
    snap = example_snapshot()
    first = replace(snap.operations[0], setup_min=D(setup),
                    materials=(MaterialSpec("RM-STEEL", D(1), D(fixed), D("4.00")),))
    return replace(snap, operations=(first, *snap.operations[1:]))


def test_setup_is_charged_once_per_order_at_its_first_completion() -> None:
    snap = _with_setup("15")
    stock = example_stock()
    state = OrderState.released(snap)
    state, first = apply_completion(snap, state, event("a", 10, good=4), 10, stock)
    state, second = apply_completion(snap, state, event("b", 10, good=6), 10, stock)
    # 15 setup min x (30 + 60)/h = 22.50 on the first completion only
    # (all units moved on to op 20, so the setup value sits there)
    assert _sum(first, Account.WIP, element=Element.SETUP, operation=20) == D("22.50")
    assert _sum(first, Account.ABSORBED_LABOR) == D("-11.50")  # (15 + 8) min x 30/h
    assert _sum(first, Account.ABSORBED_MACHINE) == D("-23.00")  # (15 + 8) min x 60/h
    assert _sum(second, Account.WIP, element=Element.SETUP) == 0
    assert _sum(second, Account.ABSORBED_LABOR) == D("-6.00")


def test_actual_minutes_cover_setup_and_run_and_split_in_proportion() -> None:
    snap = _with_setup("10")
    state = OrderState.released(snap)
    # standard 10 + 2 x 10 = 30 min, actual 45 -> labor 22.50, of which setup 10/30 x 22.50 = 7.50
    state, entries = apply_completion(snap, state, event("a", 10, good=10, actual_minutes="45"), 10, example_stock())
    assert _sum(entries, Account.ABSORBED_LABOR) == D("-22.50")
    assert _sum(entries, Account.ABSORBED_MACHINE) == D("-30.00")  # machine stays on standard minutes
    assert _sum(entries, Account.WIP, element=Element.SETUP, operation=20) == D("7.50") + D("10.00")
    assert _sum(entries, Account.WIP, element=Element.LABOR, operation=20) == D("15.00")


def test_fixed_quantity_is_issued_once_with_the_first_completion() -> None:
    snap = _with_setup("0", fixed="3")
    stock = example_stock()
    state = OrderState.released(snap)
    state, _ = apply_completion(snap, state, event("a", 10, good=2), 10, stock)
    assert stock.balances[("RM-STEEL", "STORES")][0] == 100 - 2 - 3
    state, _ = apply_completion(snap, state, event("b", 10, good=2), 10, stock)
    assert stock.balances[("RM-STEEL", "STORES")][0] == 100 - 4 - 3


def test_energy_uses_the_meter_when_given_else_standard_kwh() -> None:
    snap = example_snapshot()
    state = OrderState.released(snap)
    state, metered = apply_completion(snap, state, event("a", 10, good=3, kwh="2.345"), 10, example_stock())
    state, standard = apply_completion(snap, state, event("b", 10, good=3), 10, example_stock())
    assert _sum(metered, Account.ABSORBED_ENERGY) == D("-0.47")  # 2.345 x 0.20 = 0.469
    assert _sum(standard, Account.ABSORBED_ENERGY) == D("-0.30")  # 3 x 0.5 x 0.20


def test_close_splits_residue_between_scrap_and_cause_accounts() -> None:
    snap = example_snapshot()
    stock = example_stock()
    state = OrderState.released(snap)
    # op 10 costs 7.11/unit against a standard of 4.00 + 3.00 + 0.10 = 7.10 (metered energy above standard)
    state, _ = apply_completion(snap, state, event("a", 10, good=10, kwh="5.5"), 10, stock)
    closed, entry = close(snap, state, datetime(2026, 11, 30, tzinfo=UTC))
    assert entry is not None and check_balanced([entry]) == []
    by = {(line.account, element): line.element_amount(element) for line in entry.lines if line.debit
          for element in Element if line.element_amount(element)}
    # one line per variance account, its split by element
    assert [line.account for line in entry.lines if line.debit] == [Account.VAR_SCRAP, Account.VAR_ENERGY]
    assert by[(Account.VAR_SCRAP, Element.MATERIAL)] == D("40.00")
    assert by[(Account.VAR_SCRAP, Element.LABOR)] == D("10.00")
    assert by[(Account.VAR_SCRAP, Element.MACHINE)] == D("20.00")
    assert by[(Account.VAR_SCRAP, Element.ENERGY)] == D("1.00")
    assert by[(Account.VAR_ENERGY, Element.ENERGY)] == D("0.10")
    assert sum(by.values(), D(0)) == D("71.10")
    assert closed.status == OrderStatus.CLOSED
    assert closed.ops[20].written_off == 10 and closed.ops[20].waiting == 0


def test_wip_by_element_and_provenance_follows_the_value() -> None:
    snap = example_snapshot()
    stock = example_stock()
    state = OrderState.released(snap)
    state, e1 = apply_completion(snap, state, event("a", 10, good=10, kwh="5.5"), 10, stock)
    state, e2 = apply_completion(snap, state, event("b", 20, good=10, provenance="scan"), 20, stock)
    entries = e1 + e2
    pool = state.ops[30].first_pass
    assert pool.values[(Element.MATERIAL, Provenance.SENSOR)] == D("40.00")
    assert _sum(entries, Account.WIP, element=Element.MATERIAL, provenance=Provenance.SENSOR) == D("40.00")
    assert _sum(entries, Account.WIP, provenance=Provenance.SCAN) == pool.value - D("71.10")


def test_component_quantities_follow_the_cost_rule_not_the_components_unit_decimals() -> None:
    """SPEC 4: material is units processed x qty_per x (1 + scrap %) at the moving average, so a component counted in
    pcs is issued 0.51 per unit (half a bar per part, 2 % scrap) rather than rounded to whole pieces: other plants'
    material costs are checked against that formula. Unit decimals constrain quantities people and machines enter."""
    snap = example_snapshot()
    first = replace(snap.operations[0], materials=(MaterialSpec("RM-STEEL", D("0.51"), D(0), D("4.00")),))
    snap = replace(snap, operations=(first, *snap.operations[1:]))
    stock = example_stock()  # 100 pcs worth 400.00: 4.00 each
    state = OrderState.released(snap)
    state, one = apply_completion(snap, state, event("a", 10, good=1), 10, stock)
    state, three = apply_completion(snap, state, event("b", 10, good=3), 10, stock)
    assert [(m[1], m[3], m[4]) for m in stock.moves] == [("RM-STEEL", D("0.51"), D("2.04")),
                                                        ("RM-STEEL", D("1.53"), D("6.12"))]
    assert _sum(one, Account.RM_INV) == D("-2.04") and _sum(three, Account.RM_INV) == D("-6.12")
