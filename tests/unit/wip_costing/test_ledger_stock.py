"""``LedgerStock`` (apply_events' in-memory stock) posts exactly what ``ledger.posting.post`` of the request would."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from ledger.model import Balance, BalanceKey, MoveKind, MoveRequest, PostedMove
from ledger.posting import post
from mes_common.errors import DomainError
from wip_costing.apply import LedgerStock
from wip_costing.events import OperationEvent

from .fakes import event

D = Decimal
STEEL = BalanceKey("RM-STEEL", "STORES")
FG = BalanceKey("FG-BRACKET", "FG")


def balances() -> dict[BalanceKey, Balance]:
    return {STEEL: Balance(STEEL, D(7), D("100.00")), FG: Balance(FG, D(3), D("30.03"))}


def content(move: PostedMove) -> dict[str, object]:
    fields = move._asdict()
    fields.pop("recorded_at")
    return fields


def reference_issue(bal: dict[BalanceKey, Balance], n: int, qty: Decimal, ev: OperationEvent) -> PostedMove:
    return post(bal, MoveRequest(
        idempotency_key=f"{ev.event_id}/issue/{n}/RM-STEEL", kind=MoveKind.ISSUE, item="RM-STEEL", qty=qty,
        from_location="STORES", actor=ev.operator or ev.machine or "mes-bridge",
        reason=f"work order WO-1 operation {ev.operation}", provenance=ev.provenance, effective_at=ev.source_time,
        reference="WO-1"))


def test_issues_and_receipts_match_post() -> None:
    ev = event("e1", 10, good=1, operator="ann")
    stock, expected = LedgerStock(balances()), balances()
    for n, qty in enumerate([D(1), D("2.5"), D("0.000001"), D("3.499999")]):
        [(value, index)] = stock.issue("RM-STEEL", "STORES", qty, event=ev, order="WO-1")
        move = reference_issue(expected, n, qty, ev)
        assert (value, index) == (move.value, n)
        assert content(stock.moves[index]) == content(move)
    index = stock.receive("FG-BRACKET", "FG", D(2), D("12.34"), event=ev, order="WO-1")
    move = post(expected, MoveRequest(
        idempotency_key="e1/receipt/FG-BRACKET", kind=MoveKind.RECEIPT, item="FG-BRACKET", qty=D(2), to_location="FG",
        value=D("12.34"), actor="ann", reason="work order WO-1 completed", provenance=ev.provenance,
        effective_at=ev.source_time, reference="WO-1"))
    assert content(stock.moves[index]) == content(move)
    assert stock.balances == expected
    assert stock.balances[STEEL] == Balance(STEEL, D(0), D("0.00"))


@pytest.mark.parametrize("call", [
    lambda s, ev: s.issue("RM-STEEL", "STORES", D(8), event=ev, order="WO-1"),  # more than on hand
    lambda s, ev: s.issue("RM-STEEL", "STORES", D("0.0000001"), event=ev, order="WO-1"),  # seven places
    lambda s, ev: s.issue("RM-NEW", "STORES", D(1), event=ev, order="WO-1"),  # no balance
    lambda s, ev: s.receive("FG-BRACKET", "FG", D("1.0000001"), D("1.00"), event=ev, order="WO-1"),
    lambda s, ev: s.receive("FG-BRACKET", "FG", D(1), D("1.001"), event=ev, order="WO-1"),  # not cents
])
def test_refusals_match_post(call) -> None:  # type: ignore[no-untyped-def]
    ev = event("e2", 10, good=1)
    stock = LedgerStock(balances())
    with pytest.raises(DomainError) as refused:
        call(stock, ev)
    assert stock.balances == balances() and stock.moves == []
    naive = ev._replace(source_time=datetime(2026, 1, 1))  # naive: the request refuses it
    with pytest.raises(DomainError):
        call(LedgerStock(balances()), naive)
    assert refused.value.message


def test_insufficient_stock_names_what_is_available() -> None:
    ev = event("e3", 10, good=1)
    with pytest.raises(DomainError, match="requested 8, available 7"):
        LedgerStock(balances()).issue("RM-STEEL", "STORES", D(8), event=ev, order="WO-1")


def test_restore_undoes_the_moves_since_the_mark_newest_first() -> None:
    ev = event("e4", 10, good=1)
    stock = LedgerStock(balances())
    stock.issue("RM-STEEL", "STORES", D(1), event=ev, order="WO-1")
    kept = dict(stock.balances)
    mark = stock.mark()
    stock.issue("RM-STEEL", "STORES", D(2), event=ev, order="WO-1")
    stock.receive("FG-BRACKET", "FG", D(1), D("5.00"), event=ev, order="WO-1")
    stock.receive("FG-NEW", "FG", D(1), D("1.00"), event=ev, order="WO-1")  # a balance that did not exist
    stock.restore(mark)
    assert stock.balances == kept and len(stock.moves) == 1
    stock.restore(stock.mark())  # nothing since the mark: nothing changes
    assert stock.balances == kept


def test_a_completion_refused_at_its_second_material_leaves_state_and_stock_as_they_were() -> None:
    from dataclasses import replace

    from wip_costing.costing import apply_completion
    from wip_costing.model import MaterialSpec, OrderState

    from .fakes import example_snapshot

    snap = example_snapshot()
    first = replace(snap.operations[0], materials=(MaterialSpec("RM-STEEL", D(1), D(0), D("4.00")),
                                                   MaterialSpec("RM-BOLT", D(4), D(0), D("0.10"))))
    snap = replace(snap, operations=(first, *snap.operations[1:]))
    stock = LedgerStock({**balances(), BalanceKey("RM-BOLT", "STORES"): Balance(BalanceKey("RM-BOLT", "STORES"),
                                                                               D(3), D("0.30"))})
    before_stock = dict(stock.balances)
    state = OrderState.released(snap)
    before_state = state.copy()
    with pytest.raises(DomainError, match="RM-BOLT"):  # steel is issued, then 4 bolts are refused (3 on hand)
        apply_completion(snap, state, event("e5", 10, good=1), 10, stock)
    assert stock.balances == before_stock and stock.moves == []
    assert state == before_state
