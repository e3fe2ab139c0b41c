"""The context-free ``take_share`` and the pool's emptying shortcut: exactly the general result."""

from __future__ import annotations

import random
from decimal import Decimal, localcontext

import pytest

from mes_common.money import _CONTEXT, take_share, to_cents
from wip_costing.pools import BUCKETS, Pool, split_amount, subtract_values

D = Decimal


def cases() -> list[tuple[Decimal, Decimal, Decimal]]:
    rng = random.Random(7)
    out = [(D("0.00"), D(5), D(1)), (D("10.00"), D(3), D(1)), (D("10.00"), D(3), D(2)), (D("0.05"), D(2), D(1)),
           (D("0.01"), D("0.000003"), D("0.000001")), (D("99999999999.99"), D("7"), D("3")),
           (D("3999600.00"), D("999900"), D("0.8")), (D(1), D(1), D(1)), (D("12.34"), D("1E+3"), D("1E+2"))]
    for _ in range(3000):
        qty = D(rng.randint(1, 10**9)).scaleb(-rng.randint(0, 6))
        take = (qty * D(rng.random())).quantize(D("0.000001")) or qty
        out.append((D(rng.randint(0, 10**12)).scaleb(-2), qty, min(take, qty)))
    return out


def reference_take_share(value: Decimal, qty: Decimal, take: Decimal) -> Decimal:
    """The rule written plainly: what remains when the pool empties, else the share rounded half up to cents."""
    if take == qty:
        return value
    with localcontext(_CONTEXT):
        return to_cents(value * take / qty)


def test_take_share_matches_the_plain_rule() -> None:
    for value, qty, take in cases():
        expected = reference_take_share(value, qty, take)
        got = take_share(value, qty, take)
        assert (got, str(got)) == (expected, str(expected)), (value, qty, take)


def test_take_share_refuses_more_than_the_pool() -> None:
    with pytest.raises(ValueError, match="cannot take 2 units from a pool of 1"):
        take_share(D("1.00"), D(1), D(2))


def general_take(pool: Pool, qty: Decimal) -> dict:  # type: ignore[type-arg]
    """``Pool.take`` without the emptying shortcut."""
    parts = split_amount(pool.values, take_share(pool.value, pool.qty, qty))
    subtract_values(pool.values, parts)
    pool.qty -= qty
    if pool.qty == 0:
        pool.values.clear()
    return parts


def test_emptying_a_pool_takes_what_the_general_path_takes() -> None:
    rng = random.Random(11)
    for _ in range(500):
        buckets = rng.sample(BUCKETS, rng.randint(0, len(BUCKETS)))
        values = {b: D(rng.randint(0, 5000)).scaleb(-2) for b in buckets}
        qty = D(rng.randint(1, 50))
        fast, general = Pool(qty, dict(values)), Pool(qty, dict(values))
        taken = fast.take(qty)
        expected = general_take(general, qty)
        assert list(taken.items()) == list(expected.items())
        assert (fast.qty, fast.values) == (general.qty, general.values) == (D(0), {})


@pytest.mark.parametrize("take", [D(0), D(2), D(5), D(10)])
def test_take_returns_a_new_dict_the_caller_may_change(take: Decimal) -> None:
    # Costing grows a completion's batch from what ``take`` returns: it must not be the pool's own.
    pool = Pool(D(10), {BUCKETS[0]: D("10.00"), BUCKETS[4]: D("5.00")})
    taken = pool.take(take)
    before = (pool.qty, dict(pool.values))
    taken[BUCKETS[0]] = D("999.99")
    taken[BUCKETS[7]] = D("1.00")
    assert (pool.qty, pool.values) == before
