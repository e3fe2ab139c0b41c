"""Property tests of the pure core over random completions with scrap and rework (hypothesis).

After every completion and after close: cost in = FG + scrap loss + WIP + variances to the cent; units are
conserved per operation; every entry balances; an empty pool holds exactly 0.00; WIP per operation in the
journal equals the pools.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wip_costing.costing import apply_completion
from wip_costing.journal import Account, JournalEntry, check_balanced
from wip_costing.model import MaterialSpec, OpSpec, OrderSnapshot, OrderState, check_quantities
from wip_costing.pools import Pool, split_amount
from wip_costing.variances import close

from .fakes import FakeStock, event

D = Decimal
COST_IN = (Account.RM_INV, Account.ABSORBED_LABOR, Account.ABSORBED_MACHINE, Account.ABSORBED_ENERGY)
OUT = (Account.FG_INV, Account.SCRAP_LOSS, Account.WIP, Account.VAR_MATERIAL, Account.VAR_LABOR, Account.VAR_ENERGY,
       Account.VAR_SCRAP)

rates = st.decimals(min_value=0, max_value=99, places=2)
minutes = st.decimals(min_value=0, max_value=30, places=1)


@st.composite
def snapshots(draw: st.DrawFn) -> OrderSnapshot:
    count = draw(st.integers(1, 4))
    ops = []
    for i in range(count):
        number = (i + 1) * 10
        materials = tuple(
            MaterialSpec(f"C{number}-{j}", draw(st.decimals(min_value="0.01", max_value=5, places=3)),
                         draw(st.sampled_from([D(0), D(1), D("2.5")])), D("1.00"))
            for j in range(draw(st.integers(0, 2)))
        )
        rework_to = draw(st.sampled_from([None, *[(k + 1) * 10 for k in range(i)]])) if i else None
        ops.append(OpSpec(number, f"WC{i}", draw(minutes), draw(minutes), draw(st.decimals(0, 2, places=2)),
                          draw(rates), draw(rates), draw(st.decimals(0, 1, places=3)), "S", rework_to,
                          (i + 2) * 10 if i + 1 < count else None, materials))
    return OrderSnapshot("WO-P", "FG", D(draw(st.integers(1, 40))), "FG", "A", "A", tuple(ops))


def _balance(entries: list[JournalEntry]) -> dict[tuple[Account, int | None], Decimal]:
    out: dict[tuple[Account, int | None], Decimal] = defaultdict(Decimal)
    for entry in entries:
        for line in entry.lines:
            out[(line.account, line.operation if line.account == Account.WIP else None)] += line.debit - line.credit
    return out


def _check(snap: OrderSnapshot, state: OrderState, journal: list[JournalEntry]) -> None:
    assert check_balanced(journal) == []
    assert check_quantities(state) == []
    bal = _balance(journal)
    by_account: dict[Account, Decimal] = defaultdict(Decimal)
    for (account, _), amount in bal.items():
        by_account[account] += amount
    cost_in = -sum((by_account[a] for a in COST_IN), D(0))
    assert cost_in == sum((by_account[a] for a in OUT), D(0))
    for op in snap.operations:
        st_ = state.ops[op.number]
        assert bal.get((Account.WIP, op.number), D(0)) == st_.first_pass.value + st_.rework.value
        for pool in (st_.first_pass, st_.rework):
            if pool.qty == 0:
                assert pool.value == D("0") and pool.values == {}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snap=snapshots(), data=st.data())
def test_random_completions_conserve_cost_and_units(snap: OrderSnapshot, data: st.DataObject) -> None:
    stock = FakeStock({(m.component, "S"): (D(10**6), D("1000000.00")) for o in snap.operations for m in o.materials})
    state = OrderState.released(snap)
    journal: list[JournalEntry] = []
    for n in range(data.draw(st.integers(0, 25))):
        ready = [o for o in snap.operations if state.ops[o.number].waiting > 0]
        if not ready:
            break
        op = data.draw(st.sampled_from(ready))
        units = data.draw(st.integers(1, int(state.ops[op.number].waiting)))
        rework = data.draw(st.integers(0, units)) if op.rework_to is not None else 0
        scrap = data.draw(st.integers(0, units - rework))
        extra = {}
        if data.draw(st.booleans()):
            extra["kwh"] = str(data.draw(st.decimals(0, 50, places=3)))
        if data.draw(st.booleans()):
            extra["actual_minutes"] = str(data.draw(st.decimals(0, 500, places=1)))
        provenance = data.draw(st.sampled_from(["sensor", "scan", "manual"]))
        e = event(f"e{n}", op.number, good=units - rework - scrap, scrap=scrap, rework=rework,
                  provenance=provenance, source_time=datetime(2026, 11, 22, tzinfo=UTC).isoformat(), **extra)
        state, entries = apply_completion(snap, state, e, op.number, stock)
        journal += entries
        _check(snap, state, journal)
    closed, entry = close(snap, state, datetime(2026, 11, 23, tzinfo=UTC))
    journal += [entry] if entry else []
    _check(snap, closed, journal)
    assert _balance(journal).get((Account.WIP, None), D(0)) == 0
    assert all(v == 0 for (a, _), v in _balance(journal).items() if a == Account.WIP)
    received = sum((m[4] for m in stock.moves if m[0] == "receipt"), D(0))
    assert received == sum((e.debits for e in journal if e.kind.value == "receipt"), D(0))


@given(
    values=st.lists(st.decimals(min_value=0, max_value=1000, places=2), min_size=1, max_size=15),
    fraction=st.fractions(min_value=0, max_value=1),
)
def test_split_parts_sum_to_the_amount_and_never_exceed_a_bucket(values: list[Decimal], fraction: object) -> None:
    from wip_costing.pools import BUCKETS

    pool = dict(zip(BUCKETS, values, strict=False))
    whole = sum(pool.values(), D(0))
    amount = (whole * D(fraction.numerator) / D(fraction.denominator)).quantize(D("0.01"))  # type: ignore[attr-defined]
    amount = min(amount, whole)
    parts = split_amount(pool, amount)
    assert sum(parts.values(), D(0)) == amount
    assert all(D(0) <= parts[b] <= pool[b] for b in parts)


@given(qty=st.integers(1, 50), value=st.decimals(min_value=0, max_value=10_000, places=2),
       takes=st.lists(st.integers(1, 50), max_size=20))
def test_a_pool_emptied_in_steps_ends_at_exactly_zero(qty: int, value: Decimal, takes: list[int]) -> None:
    from wip_costing.pools import BUCKETS

    pool = Pool(D(qty), {BUCKETS[0]: value})
    taken = D(0)
    for t in takes:
        n = min(D(t), pool.qty)
        if n == 0:
            break
        taken += sum(pool.take(n).values(), D(0))
    taken += sum(pool.take(pool.qty).values(), D(0))
    assert pool.qty == 0 and pool.value == 0 and taken == value
