"""PostgreSQL, two processes at once (each its own engine): completions never exceed what is waiting, and the
same event sent by both is applied once."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.waiting import wait_for_lock_waiter
from wip_costing import reports
from wip_costing.service import apply_events, release_order

from .plant import load_plant

pytestmark = pytest.mark.postgres


def _worker(url: str, events: list[dict[str, Any]], barrier: Any, queue: Any) -> None:
    from mes_common.db import make_engine

    engine = make_engine(url)
    barrier.wait()
    out = []
    for e in events:
        out += [(o.event_id, o.status.value) for o in apply_events(engine, [e])]
    engine.dispose()
    queue.put(out)


def _run_two(url: str, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[tuple[str, str]]:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, evs, barrier, queue)) for evs in (first, second)]
    for p in procs:
        p.start()
    results = queue.get(timeout=120) + queue.get(timeout=120)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def ev(event_id: str, op: int, good: int, order: str = "WO-1") -> dict[str, Any]:
    return {"event_id": event_id, "work_order": order, "operation": op, "good": good, "provenance": "sensor",
            "source_time": "2026-11-22T08:00:00Z"}


def test_two_processes_never_complete_more_than_waiting(pg_engine: Engine, pg_url: str, example_plant: Path) -> None:
    load_plant(pg_engine, example_plant)
    release_order(pg_engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    first = [ev(f"A-{n}", 10, 1) for n in range(8)]
    second = [ev(f"B-{n}", 10, 1) for n in range(8)]
    results = _run_two(pg_url, first, second)
    counts = Counter(status for _, status in results)
    assert counts == {"applied": 10, "rejected": 6}
    with pg_engine.connect() as conn:
        view = reports.order_view(conn, "WO-1")
        assert reports.unbalanced_entries(conn) == []
        steel = reports.balances(conn)["RM-INV"]
    assert view is not None
    assert [o["waiting"] for o in view["operations"]] == ["0", "10", "0"]
    assert steel == Decimal("-40.00")


def test_the_same_event_from_two_processes_is_applied_once(pg_engine: Engine, pg_url: str,
                                                            example_plant: Path) -> None:
    load_plant(pg_engine, example_plant)
    for n in range(3):
        release_order(pg_engine, f"WO-{n}", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    events = [ev(f"S-{n}-{k}", 10, 1, order=f"WO-{n}") for k in range(5) for n in range(3)]
    results = _run_two(pg_url, events, list(events))
    per_id: dict[str, list[str]] = {}
    for event_id, status in results:
        per_id.setdefault(event_id, []).append(status)
    assert len(per_id) == 15
    assert all(sorted(s) == ["applied", "duplicate"] for s in per_id.values()), per_id
    with pg_engine.connect() as conn:
        assert reports.balances(conn)["RM-INV"] == Decimal("-60.00")
        for n in range(3):
            view = reports.order_view(conn, f"WO-{n}")
            assert view is not None and view["operations"][1]["waiting"] == "5"


def test_an_event_id_racing_for_two_orders_is_retried_into_a_conflict(pg_engine: Engine, example_plant: Path) -> None:
    import threading

    from wip_costing.apply import apply_events_in
    from wip_costing.unit_of_work import SqlUnitOfWork

    load_plant(pg_engine, example_plant)
    for n in range(2):
        release_order(pg_engine, f"WO-{n}", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    result: list[Any] = []
    with SqlUnitOfWork(pg_engine) as first:
        assert apply_events_in(first, [ev("X", 10, 1, order="WO-0")])[0].status.value == "applied"
        # A second transaction applies the same id for another order: it waits on the unique key, then loses.
        racer = threading.Thread(target=lambda: result.extend(apply_events(pg_engine, [ev("X", 10, 1, order="WO-1")])))
        racer.start()
        wait_for_lock_waiter(pg_engine, "the second transaction to block on the uncommitted key")
        assert racer.is_alive()
        first.commit()
    racer.join(timeout=30)
    assert [o.status.value for o in result] == ["conflict"]
    with pg_engine.connect() as conn:
        view = reports.order_view(conn, "WO-1")
    assert view is not None and view["operations"][0]["waiting"] == "10"
