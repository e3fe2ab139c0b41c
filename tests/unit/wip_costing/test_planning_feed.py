"""Open work-order needs follow the cost rules: what the remaining completions will actually issue."""

from __future__ import annotations

from decimal import Decimal

from wip_costing.costing import apply_completion
from wip_costing.model import MaterialSpec, OpSpec, OrderSnapshot, OrderState
from wip_costing.planning_feed import OpProgress, flow, remaining_needs

from .fakes import FakeStock, event, example_snapshot, example_stock

D = Decimal


def progress(state: OrderState) -> dict[int, OpProgress]:
    return {n: OpProgress(s.first_pass.qty, s.setup_charged) for n, s in state.ops.items()}


def run(snapshot: OrderSnapshot, stock: FakeStock, *events: tuple[int, int, int, int]) -> OrderState:
    return run_more(snapshot, OrderState.released(snapshot), stock, *events)


def run_more(snapshot: OrderSnapshot, state: OrderState, stock: FakeStock,
             *events: tuple[int, int, int, int]) -> OrderState:
    """Apply (operation, good, scrap, rework) completions in turn."""
    for op, good, scrap, rework in events:
        state, _ = apply_completion(snapshot, state, event(f"e{len(stock.moves)}-{op}", op, good, scrap, rework),
                                    op, stock)
    return state


def issued(stock: FakeStock) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for kind, item, _, qty, _ in stock.moves:
        if kind == "issue":
            out[item] = out.get(item, D(0)) + qty
    return out


def test_a_released_order_needs_its_whole_bill() -> None:
    snap = example_snapshot()
    assert remaining_needs(snap, progress(OrderState.released(snap))) == {"RM-STEEL": D(10), "RM-BOLT": D(40)}


def test_after_the_first_operation_only_the_later_components_remain() -> None:
    snap = example_snapshot()
    state = run(snap, example_stock(), (10, 10, 0, 0))
    assert remaining_needs(snap, progress(state)) == {"RM-BOLT": D(40)}


def test_scrapped_and_reworked_units_never_consume_again() -> None:
    snap = example_snapshot()
    stock = example_stock()
    # op 20: 6 good, 2 scrap; op 30: 3 good, 2 sent back to op 20 (flagged rework from then on).
    state = run(snap, stock, (10, 10, 0, 0), (20, 6, 2, 0), (30, 3, 0, 2))
    needs = remaining_needs(snap, progress(state))
    # 2 first-pass units still wait at op 20 and 1 at op 30: 3 units x 4 bolts. Not (10 - 5 processed) x 4.
    assert needs == {"RM-BOLT": D(12)}
    # The forecast is what the rest of the order really issues: finish every waiting unit.
    before = issued(stock)
    state = run_more(snap, state, stock, (20, 4, 0, 0), (30, 5, 0, 0))
    assert state.waiting == 0
    after = issued(stock)
    assert {k: after[k] - before.get(k, D(0)) for k in after if after[k] != before.get(k, D(0))} == needs


def test_fixed_quantities_until_the_first_completion_and_rounding_to_six_places() -> None:
    base = example_snapshot(qty=D(3))
    ops = list(base.operations)
    ops[1] = OpSpec(20, "WC-PRESS", D(0), D(1), D("0.3"), D(30), D(48), D("0.20"), "STORES", None, 30,
                    (MaterialSpec("DIE-OIL", D(0), D("0.5")), MaterialSpec("WASHER", D("0.3333331"))))
    snap = OrderSnapshot("WO-9", "FG-BRACKET", D(3), "FG", "A", "A", tuple(ops))
    stock = example_stock()
    stock.balances[("DIE-OIL", "STORES")] = (D(10), D(10))
    stock.balances[("WASHER", "STORES")] = (D(10), D(10))
    state = OrderState.released(snap)
    assert remaining_needs(snap, progress(state)) == {"RM-STEEL": D(3), "RM-BOLT": D(12), "DIE-OIL": D("0.5"),
                                                      "WASHER": D("0.999999")}
    state = run_more(snap, state, stock, (10, 3, 0, 0), (20, 1, 0, 0))
    # Op 20 has started: the fixed oil was issued with its first completion; 2 units still to press.
    assert remaining_needs(snap, progress(state)) == {"RM-BOLT": D(12), "WASHER": D("0.666666")}


def test_flow_follows_next_operation_links() -> None:
    assert flow(example_snapshot()) == [10, 20, 30]
