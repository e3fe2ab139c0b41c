"""``first_negative``: a balance through time with new moves added (the pure rule behind back-dated moves)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.history import first_negative

D = Decimal


def t(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


def test_a_back_dated_issue_that_empties_stock_before_a_later_issue_is_refused_at_that_moment() -> None:
    # received 10 on the 1st, issued 8 on the 10th, received 10 on the 20th (now: 12); an issue of 3 dated the
    # 5th leaves 7 on the 5th, and -1 on the 10th.
    assert first_negative(D(12), [(t(10), D(-8)), (t(20), D(10))], [(t(5), D(-3))]) == (t(10), D(-1))


def test_a_back_dated_issue_before_the_receipt_is_refused_at_its_own_moment() -> None:
    assert first_negative(D(10), [(t(3), D(10))], [(t(1), D(-1))]) == (t(1), D(-1))


def test_moves_at_one_moment_count_together_and_a_late_dated_issue_within_stock_passes() -> None:
    assert first_negative(D(5), [(t(3), D(5)), (t(3), D(-5))], [(t(3), D(5)), (t(3), D(-5))]) is None
    assert first_negative(D(10), [(t(10), D(-2))], [(t(5), D(-8))]) is None


@given(st.lists(st.tuples(st.integers(1, 28), st.integers(-5, 5)), max_size=12),
       st.lists(st.tuples(st.integers(1, 28), st.integers(-5, 5)), min_size=1, max_size=3))
def test_it_agrees_with_replaying_every_moment(recorded: list[tuple[int, int]], new: list[tuple[int, int]]) -> None:
    start = min(day for day, _ in new)
    now = D(sum(delta for _, delta in recorded))
    later = [(t(day), D(delta)) for day, delta in recorded if day > start]
    found = first_negative(now, later, [(t(day), D(delta)) for day, delta in new])
    everything = recorded + new
    expected = None
    for day in sorted({day for day, _ in everything if day >= start}):
        qty = sum(delta for d, delta in everything if d <= day)
        if qty < 0:
            expected = (t(day), D(qty))
            break
    assert found == expected
