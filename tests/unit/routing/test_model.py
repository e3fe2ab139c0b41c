"""Routing graphs: sequences, DAGs via ``after``, and the validation rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from routing.model import Operation, RoutingError, RoutingVersion, VersionState, WorkCenter
from routing.versioning import VersionError, check_no_overlap, check_transition, effective_on, overlaps

D = Decimal


def routing(*ops: Operation, valid_to: date | None = None) -> RoutingVersion:
    return RoutingVersion("FG", "A", VersionState.RELEASED, date(2026, 1, 1), valid_to, ops)


def test_sequence_by_operation_number_whatever_the_given_order() -> None:
    r = routing(Operation(30, "ASSY", rework_to=20), Operation(10, "LASER"), Operation(20, "PRESS"))
    assert r.first().number == 10
    assert r.successors(10) == [20]
    assert r.successors(20) == [30]
    assert r.predecessors(30) == [20]
    assert r.is_last(30) and not r.is_last(20)
    assert [op.number for op in r.in_order()] == [10, 20, 30]
    assert r.last().number == 30


def test_after_declares_a_dag_with_parallel_branches() -> None:
    r = routing(Operation(10, "A"), Operation(20, "B"), Operation(30, "C", after=(10,)),
                Operation(40, "D", after=(20, 30)))
    assert r.successors(10) == [20, 30]
    assert r.predecessors(40) == [20, 30]
    assert r.first().number == 10 and r.last().number == 40


def test_operations_at_a_work_center() -> None:
    r = routing(Operation(10, "A"), Operation(20, "B"), Operation(30, "A"))
    assert [op.number for op in r.operations_at("A")] == [10, 30]
    assert r.operations_at("Z") == []


def test_unknown_operation_names_the_known_ones() -> None:
    with pytest.raises(RoutingError, match=r"routing FG rev A has no operation 40 \(operations: 10, 20\)"):
        routing(Operation(10, "A"), Operation(20, "B")).operation(40)


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ((), "at least one operation"),
        ((Operation(10, "A"), Operation(10, "B")), "operation 10 is listed twice"),
        ((Operation(10, "A"), Operation(20, "B", after=(15,))), "comes after operation 15, which does not exist"),
        ((Operation(10, "A", after=(20,)), Operation(20, "B")), r"cycle 10 → 20 → 10|cycle 20 → 10 → 20"),
        ((Operation(10, "A"), Operation(20, "B", after=())), r"exactly one first operation, found \[10, 20\]"),
        ((Operation(10, "A"), Operation(20, "B"), Operation(30, "C", after=(10,))),
         r"exactly one last operation, found \[20, 30\]"),
        ((Operation(10, "A", rework_to=20), Operation(20, "B")), "rework to operation 20, which is neither an "
                                                                 "earlier"),
        ((Operation(10, "A"), Operation(20, "B", rework_to=5)), "rework to operation 5, which does not exist"),
        ((Operation(10, "A", run_min_per_unit=D(-1)),), "run_min_per_unit must be a non-negative"),
        ((Operation(10, "A", yield_pct=D(0)),), r"yield_pct must be in \(0, 100\]"),
        ((Operation(0, "A"),), "positive integer"),
        ((Operation(10, ""),), "has no work center"),
    ],
)
def test_invalid_routings_are_refused_with_the_rule(ops: tuple[Operation, ...], message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        routing(*ops)


def test_rework_may_return_to_any_ancestor_in_a_dag() -> None:
    r = routing(Operation(10, "A"), Operation(20, "B"), Operation(30, "C", after=(10,)),
                Operation(40, "D", after=(20, 30), rework_to=10))
    assert r.operation(40).rework_to == 10
    with pytest.raises(RoutingError, match="neither an earlier operation nor itself"):
        routing(Operation(10, "A"), Operation(20, "B"), Operation(30, "C", after=(10,), rework_to=20),
                Operation(40, "D", after=(20, 30)))


def test_an_operation_may_send_rework_back_to_itself() -> None:
    r = routing(Operation(10, "A"), Operation(20, "B", rework_to=20))
    assert r.operation(20).rework_to == 20


def test_window_must_not_end_before_it_starts() -> None:
    with pytest.raises(VersionError, match="valid_to 2025-12-31 is before valid_from 2026-01-01"):
        routing(Operation(10, "A"), valid_to=date(2025, 12, 31))


def test_effectivity_is_inclusive_at_both_ends() -> None:
    assert effective_on(date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 1))
    assert effective_on(date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 31))
    assert not effective_on(date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 1))
    assert not effective_on(date(2026, 1, 1), None, date(2025, 12, 31))
    assert effective_on(date(2026, 1, 1), None, date(2099, 1, 1))
    assert overlaps(date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 31), None)
    assert not overlaps(date(2026, 1, 1), date(2026, 1, 30), date(2026, 1, 31), None)


def test_overlap_and_transitions_are_refused_with_the_facts() -> None:
    with pytest.raises(VersionError, match=r"overlaps released revision A \(2026-01-01\.\.open\)"):
        check_no_overlap("BOM X rev B", "B", date(2026, 6, 1), None, [("A", date(2026, 1, 1), None)])
    check_no_overlap("BOM X rev B", "B", date(2026, 6, 1), None, [("A", date(2026, 1, 1), date(2026, 5, 31))])
    with pytest.raises(VersionError, match="is obsolete; it cannot become released"):
        check_transition("BOM X rev A", VersionState.OBSOLETE, VersionState.RELEASED)


def test_work_center_rates_must_be_non_negative() -> None:
    with pytest.raises(RoutingError, match="work center WC: labor_rate must be a non-negative"):
        WorkCenter("WC", "x", D(-1), D(0), D(0), "CC")
    wc = WorkCenter("WC", "x", D(30), D(60), D("0.2"), "CC", ("M1",), ("T1",), "STORES")
    assert wc.machines == ("M1",) and wc.supply_location == "STORES"
