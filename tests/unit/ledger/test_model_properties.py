"""Properties of the pure ``post`` over random move sequences: no cent created or lost, nothing negative."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.model import Balance, BalanceKey, InsufficientStock, MoveKind, MoveRequest
from ledger.posting import post

PLACES = ["A", "B", "C"]
ZERO = Decimal(0)

receipts = st.tuples(st.just("in"), st.sampled_from(PLACES), st.integers(1, 1_000_000), st.integers(0, 10**9))
outs = st.tuples(st.just("out"), st.sampled_from(PLACES), st.integers(1, 400_000), st.just(0))
transfers = st.tuples(st.sampled_from(PLACES), st.sampled_from(PLACES), st.integers(1, 400_000)).filter(
    lambda t: t[0] != t[1]
)
steps = st.lists(st.one_of(receipts, outs, transfers.map(lambda t: ("move", t[0] + t[1], t[2], 0))), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_value_is_conserved_and_balances_stay_consistent(sequence: list[tuple[str, str, int, int]]) -> None:
    balances: dict[BalanceKey, Balance] = {}
    value_in = ZERO
    for n, (what, where, units, cents) in enumerate(sequence):
        # Quantities with three decimals, so averages rarely divide evenly.
        qty = Decimal(units).scaleb(-3)
        before = dict(balances)
        if what == "in":
            request = MoveRequest(idempotency_key=str(n), kind=MoveKind.RECEIPT, item="X", qty=qty, to_location=where,
                                  value=Decimal(cents).scaleb(-2))  # fmt: skip
        elif what == "out":
            request = MoveRequest(idempotency_key=str(n), kind=MoveKind.ISSUE, item="X", qty=qty, from_location=where)
        else:
            request = MoveRequest(idempotency_key=str(n), kind=MoveKind.TRANSFER, item="X", qty=qty,
                                  from_location=where[0], to_location=where[1])  # fmt: skip
        try:
            move = post(balances, request)
        except InsufficientStock as exc:
            assert exc.available < qty
            assert balances == before
            continue
        assert move.value == move.value.quantize(Decimal("0.01"))
        if what == "in":
            value_in += move.value
        elif what == "out":
            value_in -= move.value
    assert sum((b.value for b in balances.values()), ZERO) == value_in
    for balance in balances.values():
        assert balance.qty >= 0 and balance.value >= 0
        assert balance.qty != 0 or balance.value == 0
