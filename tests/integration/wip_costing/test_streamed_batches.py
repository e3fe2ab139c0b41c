"""PostgreSQL batches of ``STREAM_FROM`` events or more are written by a writer thread while they are computed (move
ids reserved up front): they must write exactly what the one-step path writes, rejections included, and nothing at
all when the batch fails, whether computing or loading failed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mes_common.db import make_engine
from tests.waiting import wait_for_lock_waiter
from wip_costing import apply as service
from wip_costing import costing
from wip_costing.events import Status
from wip_costing.service import apply_events, release_order

from .plant import load_plant

pytestmark = pytest.mark.postgres


def ev(event_id: str, op: int | None, good: Any = 0, scrap: Any = 0, rework: Any = 0, order: str = "WO-1",
       **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "work_order": order, "operation": op, "good": good, "scrap": scrap,
            "rework": rework, "provenance": "sensor", "source_time": "2026-11-22T08:00:00Z", **extra}


def batch() -> list[dict[str, Any]]:
    events = [
        ev("a1", 10, good="2.000000", kwh="1.5"),
        ev("a2", 20, good=2),
        ev("a3", 30, good="1.0000001"),  # 7 decimal places: refused as it is read
        ev("a4", 30, good=1, operator="ann"),
        ev("b1", 10, good=150, order="WO-2"),  # more steel than on hand: rejected at its first issue
        ev("b2", 10, good=5, scrap=1, order="WO-2", actual_minutes="7.5"),
        ev("b3", 20, good=4, order="WO-2"),
        ev("b4", 30, good=2, rework=1, scrap=1, order="WO-2"),
        ev("b5", 20, good=1, order="WO-2", work_center="WC-PRESS"),
        ev("a4", 30, good=1, operator="ann"),  # duplicate within the batch
        ev("a1", 10, good=3),  # same id, other content: conflict
        ev("x1", 10, good=1, order="WO-404"),  # unknown order
        ev("x2", 15, good=1),  # unknown operation
        {"event_id": "x3", "work_order": "WO-1", "provenance": "psychic", "source_time": "2026-11-22T08:00:00Z"},
    ]
    events += [ev(f"c{n}", (10, 20, 30)[n % 3], good=1, order="WO-3", scrap=n % 2) for n in range(12)]
    events += [ev(f"d{n}", 10, good=1, order="WO-1", serial=None) for n in range(3)]
    return events


QUERIES = {
    "journal": "SELECT j.entry, j.kind, j.event_id, j.account, j.debit, j.credit, j.work_order, j.operation, "
               "j.work_center, j.provenance, j.item, m.idempotency_key, j.effective_at, j.material, j.setup, j.labor, "
               "j.machine, j.energy, "
               "(j.stock_move_id IS NULL) = (m.id IS NULL) FROM journal_lines j "
               "LEFT JOIN stock_moves m ON m.id = j.stock_move_id ORDER BY j.id",
    "moves": "SELECT idempotency_key, kind, item, qty, from_location, to_location, lot, value, requested_value, actor, "
             "reason, provenance, effective_at, reference FROM stock_moves WHERE reference LIKE 'WO-%' ORDER BY id",
    "balances": "SELECT item, location, lot, qty, value FROM stock_balances ORDER BY item, location, lot",
    "operations": "SELECT * FROM wo_operations ORDER BY work_order, operation",
    "orders": "SELECT id, status, produced FROM work_orders ORDER BY id",
    "events": "SELECT event_id, fingerprint, work_order, operation, provenance, payload, source_time "
              "FROM operation_events ORDER BY event_id",
    "problems": "SELECT event_id, status, reason, fingerprint, payload FROM event_problems ORDER BY id",
}


def run(engine: Engine, example_plant: Path) -> tuple[list[Any], dict[str, list[Any]]]:
    load_plant(engine, example_plant)
    for order, qty in (("WO-1", 10), ("WO-2", 200), ("WO-3", 12)):
        release_order(engine, order, "FG-BRACKET", Decimal(qty), on=date(2026, 11, 22))
    apply_events(engine, [ev("warm", 10, good=1, order="WO-3")])
    outcomes = apply_events(engine, batch())
    with engine.connect() as conn:
        state = {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in QUERIES.items()}
    return outcomes, state


def test_a_streamed_batch_writes_what_the_one_step_path_writes(pg_engine: Engine, new_pg_url: Callable[[], str],
                                                               example_plant: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(batch()) >= service.STREAM_FROM
    streamed, streamed_state = run(pg_engine, example_plant)
    monkeypatch.setattr(service, "STREAM_FROM", 10**9)
    other = make_engine(new_pg_url())  # the same from an empty database again
    try:
        one_step, one_step_state = run(other, example_plant)
    finally:
        other.dispose()

    assert streamed == one_step
    statuses = {o.event_id: o.status for o in streamed}
    assert statuses["a3"] is Status.REJECTED and statuses["b1"] is Status.REJECTED
    assert [o.status for o in streamed if o.event_id == "a4"] == [Status.APPLIED, Status.DUPLICATE]
    assert sum(o.status is Status.APPLIED for o in streamed) >= 15
    for name in QUERIES:
        assert streamed_state[name] == one_step_state[name], name
    journal = streamed_state["journal"]
    assert all(row[-1] for row in journal)  # every named move exists
    assert {row[3] for row in journal if row[11] is not None} == {"RM-INV", "FG-INV"}
    # the element split (material .. energy) sums to the amount on WIP and SCRAP-LOSS lines, and only there
    for row in journal:
        split = [part for part in row[13:18] if part is not None]
        assert (sum(split) == row[4] + row[5]) if row[3] in ("WIP", "SCRAP-LOSS") else not split, row
    assert not any(row[2] in ("a3", "b1") for row in journal)  # rejected: no lines


def test_a_streamed_batch_that_fails_writes_nothing(pg_engine: Engine, example_plant: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    load_plant(pg_engine, example_plant)
    release_order(pg_engine, "WO-3", "FG-BRACKET", Decimal(100), on=date(2026, 11, 22))
    events = [ev(f"e{n}", (10, 20, 30)[n % 3], good=1, order="WO-3") for n in range(3 * service.STREAM_FROM)]
    real = costing.apply_completion
    calls = []

    def failing(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2 * service.STREAM_FROM:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(service, "apply_completion", failing)
    with pytest.raises(RuntimeError, match="boom"):
        apply_events(pg_engine, events)
    with pg_engine.connect() as conn:
        for table in ("journal_lines", "operation_events", "event_problems"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
        assert conn.execute(text("SELECT count(*) FROM stock_moves WHERE reference = 'WO-3'")).scalar() == 0
    monkeypatch.setattr(service, "apply_completion", real)
    assert {o.status for o in apply_events(pg_engine, events)} == {Status.APPLIED}


def test_the_same_streamed_batch_from_two_threads_is_applied_once(pg_engine: Engine, example_plant: Path) -> None:
    import threading

    load_plant(pg_engine, example_plant)
    release_order(pg_engine, "WO-1", "FG-BRACKET", Decimal(40), on=date(2026, 11, 22))
    events = [ev(f"t{n}", (10, 20, 30)[n % 3], good=1) for n in range(3 * service.STREAM_FROM)]
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(apply_events(pg_engine, events))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    statuses = [{o.status for o in outcomes} for outcomes in results]
    assert {Status.APPLIED} in statuses and {Status.DUPLICATE} in statuses
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM operation_events")).scalar() == len(events)
        # op 10 issues steel, op 30 issues bolts and receives the bracket: 20 + 2 x 20 moves, once
        assert conn.execute(text("SELECT count(*) FROM stock_moves WHERE reference = 'WO-1'")).scalar() == 60
        assert conn.execute(text("SELECT sum(debit) - sum(credit) FROM journal_lines")).scalar() == 0


def test_an_event_id_racing_in_two_streamed_batches_is_retried_into_a_conflict(pg_engine: Engine,
                                                                                example_plant: Path) -> None:
    import threading

    from wip_costing.apply import apply_events_in
    from wip_costing.unit_of_work import SqlUnitOfWork

    load_plant(pg_engine, example_plant)
    for order in ("WO-0", "WO-1"):
        release_order(pg_engine, order, "FG-BRACKET", Decimal(40), on=date(2026, 11, 22))
    first = [ev("X", 10, good=1, order="WO-0")] + [ev(f"a{n}", 10, good=1, order="WO-0") for n in range(25)]
    second = [ev(f"b{n}", 10, good=1, order="WO-1") for n in range(25)] + [ev("X", 10, good=1, order="WO-1")]
    result: list[Any] = []
    with SqlUnitOfWork(pg_engine) as uow:
        assert {o.status for o in apply_events_in(uow, first)} == {Status.APPLIED}
        racer = threading.Thread(target=lambda: result.extend(apply_events(pg_engine, second)))
        racer.start()
        wait_for_lock_waiter(pg_engine, "the racing batch to block on the uncommitted key")
        assert racer.is_alive()
        uow.commit()
    racer.join(timeout=30)
    assert [o.status for o in result] == [Status.APPLIED] * 25 + [Status.CONFLICT]
    with pg_engine.connect() as conn:
        rows = conn.execute(text("SELECT work_order, count(*) FROM operation_events GROUP BY 1 ORDER BY 1")).all()
        assert [tuple(r) for r in rows] == [("WO-0", 26), ("WO-1", 25)]
        assert conn.execute(text("SELECT count(*) FROM journal_lines WHERE event_id = 'X'")).scalar() > 0
        assert conn.execute(text("SELECT count(DISTINCT work_order) FROM journal_lines WHERE event_id = 'X'")
                            ).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM stock_moves WHERE reference = 'WO-1'")).scalar() == 25


def test_a_load_the_writer_cannot_do_fails_the_batch_and_writes_nothing(pg_engine: Engine,
                                                                         example_plant: Path) -> None:
    from ledger.model import MoveConflict, MoveKind, MoveRequest
    from ledger.service import post_moves

    load_plant(pg_engine, example_plant)
    release_order(pg_engine, "WO-1", "FG-BRACKET", Decimal(40), on=date(2026, 11, 22))
    events = [ev(f"w{n}", (10, 20, 30)[n % 3], good=1) for n in range(3 * service.STREAM_FROM)]
    # Another writer already holds the key of the batch's first steel issue: the writer thread's COPY of the moves
    # fails on it, every retry too.
    with pg_engine.begin() as conn:
        post_moves(conn, [MoveRequest(idempotency_key="w0/issue/0/RM-STEEL", kind=MoveKind.ISSUE, item="RM-STEEL",
                                      qty=Decimal(1), from_location="STORES", actor="someone", reason="test",
                                      provenance="manual")])
    interval = sys.getswitchinterval()
    with pytest.raises(MoveConflict, match="w0/issue/0/RM-STEEL"):
        apply_events(pg_engine, events)
    assert sys.getswitchinterval() == interval
    with pg_engine.connect() as conn:
        for table in ("journal_lines", "operation_events", "event_problems"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
        assert conn.execute(text("SELECT count(*) FROM stock_moves WHERE reference = 'WO-1'")).scalar() == 0
