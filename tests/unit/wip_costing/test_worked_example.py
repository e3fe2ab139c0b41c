"""SPEC's worked example, to the cent, on the pure core with an in-memory stock."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mes_common.errors import DomainError
from wip_costing.costing import apply_completion
from wip_costing.journal import Account, check_balanced
from wip_costing.model import MoreThanWaiting, NoReworkOperation, OrderState, OrderStatus, check_quantities
from wip_costing.pools import Element

from .fakes import event, example_snapshot, example_stock

D = Decimal


def balance(entries: list, account: Account, element: Element | None = None, **where: object) -> Decimal:
    """Signed balance of ``account`` over the lines matching ``where`` (of their ``element`` part if named)."""
    total = D(0)
    for entry in entries:
        for line in entry.lines:
            if line.account == account and all(getattr(line, k) == v for k, v in where.items()):
                total += line.debit - line.credit if element is None else line.element_amount(element)
    return total


def test_worked_example_to_the_cent() -> None:
    snap = example_snapshot()
    stock = example_stock()
    state = OrderState.released(snap)
    journal: list = []

    state, entries = apply_completion(snap, state, event("e1", 10, good=10, kwh="5.5"), 10, stock)
    journal += entries
    assert state.ops[20].first_pass.qty == 10
    assert state.ops[20].first_pass.value == D("71.10")
    by_element = {e: balance(entries, Account.WIP, operation=10, element=e) for e in Element}
    assert by_element[Element.MATERIAL] == D(0)  # debited at op 10, then transferred out
    assert balance(entries, Account.WIP, operation=20) == D("71.10")
    assert balance(entries, Account.RM_INV) == D("-40.00")
    assert balance(entries, Account.ABSORBED_LABOR) == D("-10.00")
    assert balance(entries, Account.ABSORBED_MACHINE) == D("-20.00")
    assert balance(entries, Account.ABSORBED_ENERGY) == D("-1.10")

    state, entries = apply_completion(
        snap, state, event("e2", 20, good=8, scrap=2, kwh="3.0", actual_minutes="12"), 20, stock
    )
    journal += entries
    assert balance(entries, Account.ABSORBED_LABOR) == D("-6.00")
    assert balance(entries, Account.ABSORBED_MACHINE) == D("-8.00")
    assert balance(entries, Account.ABSORBED_ENERGY) == D("-0.60")
    assert balance(journal, Account.SCRAP_LOSS) == D("17.14")
    assert state.ops[30].first_pass.qty == 8
    assert state.ops[30].first_pass.value == D("68.56")

    state, entries = apply_completion(snap, state, event("e3", 30, good=5, provenance="scan"), 30, stock)
    journal += entries
    assert balance(entries, Account.RM_INV) == D("-2.00")
    assert balance(entries, Account.ABSORBED_LABOR) == D("-9.00")
    assert balance(entries, Account.ABSORBED_ENERGY) == D("-0.10")
    assert balance(entries, Account.FG_INV) == D("53.95")
    assert balance(journal, Account.WIP) == D("25.71")
    assert balance(journal, Account.WIP, operation=30) == D("25.71")
    assert state.ops[30].waiting == 3
    assert stock.balances[("FG-BRACKET", "FG")] == (D(5), D("53.95"))
    assert stock.balances[("RM-STEEL", "STORES")] == (D(90), D("360.00"))
    assert stock.balances[("RM-BOLT", "STORES")] == (D(480), D("48.00"))
    cost_in = -sum((balance(journal, a) for a in (Account.RM_INV, Account.ABSORBED_LABOR, Account.ABSORBED_MACHINE,
                                                  Account.ABSORBED_ENERGY)), D(0))
    assert cost_in == D("96.80")
    assert cost_in == D("53.95") + D("17.14") + D("25.71")
    assert check_balanced(journal) == []
    assert check_quantities(state) == []
    assert state.status == OrderStatus.IN_PROGRESS
    assert state.produced == 5


def test_more_than_waiting_is_refused_and_changes_nothing() -> None:
    snap = example_snapshot()
    stock = example_stock()
    state = OrderState.released(snap)
    state, _ = apply_completion(snap, state, event("e1", 10, good=10), 10, stock)
    with pytest.raises(MoreThanWaiting, match="WO-1 operation 20: completion of 11 units exceeds the 10 waiting"):
        apply_completion(snap, state, event("e2", 20, good=11), 20, stock)
    assert state.ops[20].waiting == 10


def test_short_stock_rolls_back_every_issue() -> None:
    snap = example_snapshot()
    stock = example_stock()
    stock.balances[("RM-BOLT", "STORES")] = (D(10), D("1.00"))
    state = OrderState.released(snap)
    state, _ = apply_completion(snap, state, event("e1", 10, good=10), 10, stock)
    state, _ = apply_completion(snap, state, event("e2", 20, good=10), 20, stock)
    before = (dict(stock.balances), len(stock.moves), state.ops[30].first_pass.value)
    with pytest.raises(DomainError, match="RM-BOLT at STORES"):
        apply_completion(snap, state, event("e3", 30, good=5), 30, stock)
    assert (dict(stock.balances), len(stock.moves), state.ops[30].first_pass.value) == before


def test_rework_goes_to_rework_pool_and_never_consumes_components_again() -> None:
    snap = example_snapshot()
    stock = example_stock()
    state = OrderState.released(snap)
    state, _ = apply_completion(snap, state, event("e1", 10, good=10), 10, stock)
    state, _ = apply_completion(snap, state, event("e2", 20, good=10), 20, stock)
    state, entries = apply_completion(snap, state, event("e3", 30, good=7, rework=3), 30, stock)
    assert state.ops[20].rework.qty == 3
    assert state.ops[20].rework.value == balance(entries, Account.WIP, operation=20)
    bolts_before = stock.balances[("RM-BOLT", "STORES")]
    assert bolts_before[0] == 500 - 40
    state, _ = apply_completion(snap, state, event("e4", 20, good=3), 20, stock)
    assert state.ops[30].rework.qty == 3 and state.ops[30].first_pass.qty == 0
    state, entries = apply_completion(snap, state, event("e5", 30, good=3), 30, stock)
    assert stock.balances[("RM-BOLT", "STORES")] == bolts_before  # no bolts for repaired units
    assert balance(entries, Account.RM_INV) == 0
    assert state.status == OrderStatus.COMPLETED
    assert state.produced == 10
    assert check_quantities(state) == []


def test_rework_without_rework_operation_is_refused() -> None:
    snap = example_snapshot(rework_to=None)
    state = OrderState.released(snap)
    with pytest.raises(NoReworkOperation, match="operation 10"):
        apply_completion(snap, state, event("e1", 10, good=9, rework=1), 10, example_stock())


def test_actual_minutes_set_labor_but_not_machine() -> None:
    snap = example_snapshot()
    stock = example_stock()
    state = OrderState.released(snap)
    state, entries = apply_completion(snap, state, event("e1", 10, good=10, actual_minutes="30"), 10, stock)
    assert balance(entries, Account.ABSORBED_LABOR) == D("-15.00")  # 30 min x 30.00/h
    assert balance(entries, Account.ABSORBED_MACHINE) == D("-20.00")  # standard 20 min x 60.00/h
    assert balance(entries, Account.ABSORBED_ENERGY) == D("-1.00")  # std 0.5 kWh x 10 x 0.20
