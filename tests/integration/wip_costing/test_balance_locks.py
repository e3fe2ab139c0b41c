"""PostgreSQL: a batch locks only the stock balances its events can post to (its operations' materials, the
finished item at the last operation), so a report at an operation that issues nothing does not wait for another
transaction holding the steel balance; one at the operation that issues steel does."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.waiting import lock_waiters, wait_for_lock_waiter
from wip_costing.service import apply_events, release_order

from .plant import load_plant

pytestmark = pytest.mark.postgres


def ev(event_id: str, op: int) -> dict[str, Any]:
    return {"event_id": event_id, "work_order": "WO-L", "operation": op, "good": 1, "provenance": "scan",
            "source_time": "2026-11-22T08:00:00Z"}


def _apply_in_thread(engine: Engine, event: dict[str, Any]) -> tuple[threading.Thread, list[str]]:
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.extend(o.status.value for o in apply_events(engine, [event])))
    thread.start()
    return thread, done


def test_a_report_waits_only_for_the_balances_it_posts_to(pg_engine: Engine, example_plant: Path) -> None:
    load_plant(pg_engine, example_plant)
    release_order(pg_engine, "WO-L", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    assert [o.status.value for o in apply_events(pg_engine, [ev("L-10a", 10), ev("L-10b", 10)])] == ["applied"] * 2
    with pg_engine.connect() as holder:  # another transaction holds every steel balance row
        holder.execute(text("SELECT qty FROM stock_balances WHERE item = 'RM-STEEL' FOR UPDATE")).all()
        at_20, done_20 = _apply_in_thread(pg_engine, ev("L-20", 20))  # operation 20 issues no material
        at_20.join(timeout=30)
        assert done_20 == ["applied"], "a report at operation 20 waited for the steel balance"
        at_10, done_10 = _apply_in_thread(pg_engine, ev("L-10c", 10))  # operation 10 issues steel: it waits
        wait_for_lock_waiter(pg_engine, "the report at operation 10 to wait for the steel balance")
        assert done_10 == [] and lock_waiters(pg_engine) == 1
        holder.rollback()
    at_10.join(timeout=30)
    assert done_10 == ["applied"]
