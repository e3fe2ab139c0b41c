"""The pure ledger core: moving average per balance, refusals that change nothing, request validation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledger.model import (
    Balance,
    BalanceKey,
    InsufficientStock,
    InvalidMove,
    MoveKind,
    MoveRequest,
)
from ledger.posting import post, reversal_of
from mes_common.errors import DomainError

D = Decimal
STEEL = BalanceKey("RM-STEEL", "STORES")
T = datetime(2026, 11, 22, 8, tzinfo=UTC)


def req(key: str, kind: MoveKind, qty: str, **kw: object) -> MoveRequest:
    return MoveRequest(idempotency_key=key, kind=kind, item="RM-STEEL", qty=D(qty), **kw)  # type: ignore[arg-type]


def test_receipts_add_value_and_issues_take_the_moving_average() -> None:
    balances: dict[BalanceKey, Balance] = {}
    post(balances, req("r1", MoveKind.RECEIPT, "100", to_location="STORES", value=D("400.00")))
    post(balances, req("r2", MoveKind.RECEIPT, "50", to_location="STORES", value=D("250.00")))
    assert balances[STEEL] == Balance(STEEL, D("150"), D("650.00"))
    issued = post(balances, req("i1", MoveKind.ISSUE, "15", from_location="STORES"))
    assert issued.value == D("65.00")
    assert balances[STEEL] == Balance(STEEL, D("135"), D("585.00"))
    assert balances[STEEL].average.quantize(D("0.000001")) == D("4.333333")


def test_last_units_take_exactly_what_remains() -> None:
    balances = {STEEL: Balance(STEEL, D("3"), D("1.00"))}
    values = [post(balances, req(f"i{n}", MoveKind.ISSUE, "1", from_location="STORES")).value for n in range(3)]
    assert values == [D("0.33"), D("0.34"), D("0.33")]
    assert sum(values) == D("1.00")
    assert balances[STEEL] == Balance(STEEL, D("0"), D("0.00"))


def test_insufficient_stock_names_the_facts_and_changes_nothing() -> None:
    balances = {STEEL: Balance(STEEL, D("2.5"), D("10.00"))}
    before = dict(balances)
    with pytest.raises(InsufficientStock) as info:
        post(balances, req("t1", MoveKind.TRANSFER, "3", from_location="STORES", to_location="FG", lot=""))
    err = info.value
    assert isinstance(err, DomainError)
    assert (err.item, err.location, err.lot, err.requested, err.available) == ("RM-STEEL", "STORES", "", D(3), D("2.5"))
    assert err.message == "insufficient stock of RM-STEEL at STORES: requested 3, available 2.5"
    assert balances == before


def test_issue_from_an_unknown_balance_has_nothing_available() -> None:
    balances: dict[BalanceKey, Balance] = {}
    with pytest.raises(InsufficientStock, match="lot L9 at STORES: requested 1, available 0"):
        post(balances, req("i", MoveKind.ISSUE, "1", from_location="STORES", lot="L9"))
    assert balances == {}


def test_transfer_moves_the_same_value_between_balances() -> None:
    balances = {STEEL: Balance(STEEL, D("3"), D("10.00"))}
    moved = post(balances, req("t", MoveKind.TRANSFER, "2", from_location="STORES", to_location="FG"))
    fg = BalanceKey("RM-STEEL", "FG")
    assert moved.value == D("6.67")
    assert balances == {STEEL: Balance(STEEL, D("1"), D("3.33")), fg: Balance(fg, D("2"), D("6.67"))}


def test_incoming_without_value_comes_in_at_the_destination_average() -> None:
    balances = {STEEL: Balance(STEEL, D("3"), D("10.00"))}
    found = post(balances, req("a", MoveKind.ADJUSTMENT, "1", to_location="STORES", effective_at=T))
    assert found.value == D("3.33")
    assert found.effective_at == T and found.requested_value is None
    lost = post(balances, req("b", MoveKind.ADJUSTMENT, "4", from_location="STORES"))
    assert lost.value == D("13.33")
    assert balances[STEEL] == Balance(STEEL, D("0"), D("0.00"))


def test_reversal_mirrors_the_move_at_its_value() -> None:
    balances = {STEEL: Balance(STEEL, D("10"), D("40.00"))}
    issued = post(balances, req("i", MoveKind.ISSUE, "4", from_location="STORES")).with_id(7)
    reversal = reversal_of(issued, actor="bob", reason="typo")
    assert (reversal.kind, reversal.from_location, reversal.to_location, reversal.value, reversal.reverses) == (
        MoveKind.REVERSAL, None, "STORES", D("16.00"), 7)  # fmt: skip
    assert reversal.idempotency_key == "reversal:7"
    post(balances, reversal)
    assert balances[STEEL] == Balance(STEEL, D("10"), D("40.00"))
    with pytest.raises(InvalidMove, match="itself a reversal"):
        reversal_of(post(balances, reversal).with_id(8), actor="bob", reason="again")


def test_reversal_out_never_takes_more_than_the_balance_holds() -> None:
    balances = {STEEL: Balance(STEEL, D("10"), D("30.00"))}
    out = req("x", MoveKind.REVERSAL, "5", from_location="STORES", value=D("40.00"), reverses=1)
    assert post(balances, out).value == D("30.00")
    assert balances[STEEL] == Balance(STEEL, D("5"), D("0.00"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"qty": D("0"), "to_location": "S"}, "quantity must be a positive Decimal"),
        ({"qty": D("-1"), "to_location": "S"}, "quantity must be a positive Decimal"),
        ({"qty": D("0.0000001"), "to_location": "S"}, "more than 6 decimal places"),
        ({"qty": 1.5, "to_location": "S"}, "quantity must be a positive Decimal"),
        ({"qty": D("1"), "to_location": "S", "value": D("1.005")}, "is not in cents"),
        ({"qty": D("1"), "to_location": "S", "value": D("-1")}, "value must be a Decimal of at least 0"),
        ({"qty": D("1")}, "needs to_location"),
        ({"qty": D("1"), "to_location": "S", "from_location": "F"}, "takes no from_location"),
        ({"qty": D("1"), "to_location": "S", "effective_at": datetime(2026, 1, 1)}, "has no timezone"),
    ],
)
def test_receipt_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidMove, match=message):
        MoveRequest(idempotency_key="k", kind=MoveKind.RECEIPT, item="X", **kwargs)  # type: ignore[arg-type]


def test_side_rules_of_other_kinds() -> None:
    with pytest.raises(InvalidMove, match="not both"):
        req("a", MoveKind.ADJUSTMENT, "1", from_location="A", to_location="B")
    with pytest.raises(InvalidMove, match="same location"):
        req("t", MoveKind.TRANSFER, "1", from_location="A", to_location="A")
    with pytest.raises(InvalidMove, match="derived from the balance"):
        req("i", MoveKind.ISSUE, "1", from_location="A", value=D("1.00"))
    with pytest.raises(InvalidMove, match="names the move it reverses"):
        req("r", MoveKind.REVERSAL, "1", from_location="A")
    with pytest.raises(InvalidMove, match="idempotency key"):
        req("", MoveKind.ISSUE, "1", from_location="A")


def test_differences_ignore_who_and_why_but_not_what() -> None:
    balances: dict[BalanceKey, Balance] = {}
    original = req("r", MoveKind.RECEIPT, "1", to_location="STORES", value=D("4.00"), actor="a", effective_at=T)
    posted = post(balances, original)
    retry = req("r", MoveKind.RECEIPT, "1", to_location="STORES", value=D("4.00"), actor="b", reason="retry")
    assert posted.differences(retry) == []
    other = req("r", MoveKind.RECEIPT, "2", to_location="STORES", value=D("4.00"), effective_at=T)
    assert posted.differences(other) == ["qty: recorded 1, now 2"]
