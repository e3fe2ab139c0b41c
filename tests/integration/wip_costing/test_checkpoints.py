"""Balances as of any moment from daily checkpoints equal the plain sum over every line / move, at random moments,
while events (some back-dated before checkpoints already built) keep arriving between builds; on SQLite and
PostgreSQL. On PostgreSQL a build also waits for a transaction that holds uncommitted lines."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from ledger import queries as ledger_queries
from ledger.checkpoints import STOCK
from ledger.model import MoveKind, MoveRequest
from ledger.service import post_moves
from mes_common.checkpoint_build import refresh
from mes_common.checkpoints import checkpoint_days
from wip_costing import reports
from wip_costing.apply import apply_events_in
from wip_costing.checkpoints import JOURNAL, journal_checkpoints
from wip_costing.events import Status
from wip_costing.service import apply_events, close_order, release_order
from wip_costing.unit_of_work import SqlUnitOfWork

from .plant import load_plant

D = Decimal
START = datetime(2026, 2, 1, tzinfo=UTC)
DAYS = 20


def _moment(rng: random.Random) -> datetime:
    """A random moment of the period, often an exact midnight (a checkpoint's boundary) or a second beside it."""
    day = START + timedelta(days=rng.randrange(-1, DAYS + 2))
    return day + rng.choice([timedelta(0), timedelta(seconds=-1), timedelta(seconds=1),
                             timedelta(seconds=rng.randrange(86_400))])


def _event(rng: random.Random, order: str, n: int, when: datetime) -> dict[str, Any]:
    op = rng.choice([10, 10, 20, 30])
    good, scrap = rng.randint(0, 2), rng.randint(0, 1)
    return {"event_id": f"{order}:{n}", "work_order": order, "operation": op, "good": good or 1, "scrap": scrap,
            "rework": rng.randint(0, 1) if op == 30 else 0, "provenance": rng.choice(["sensor", "scan", "manual"]),
            "source_time": when.isoformat(), **({"kwh": "0.7"} if rng.random() < 0.5 else {})}


def assert_as_of_equals_full_sum(engine: Engine, moments: list[datetime | None]) -> None:
    with engine.connect() as conn:
        for when in moments:
            for by in reports.BY:
                assert reports.wip_value(conn, when, by) == reports.wip_value_by_scan(conn, when, by), (when, by)
            assert reports.balances(conn, when) == reports.balances_by_scan(conn, when), when
            assert reports.scrap_loss(conn, when) == reports.account_balance_by_scan(
                conn, reports.Account.SCRAP_LOSS, when)
            for item in (None, "RM-STEEL", "FG-BRACKET"):
                assert ledger_queries.onhand(conn, item, as_of=when or datetime(2100, 1, 1, tzinfo=UTC)) == \
                    ledger_queries.onhand_by_scan(conn, item, as_of=when), (when, item)
            assert ledger_queries.onhand(conn, location="STORES", as_of=when or START) == \
                ledger_queries.onhand_by_scan(conn, location="STORES", as_of=when or START)


@pytest.mark.parametrize("seed", [1, 2])
def test_as_of_equals_full_sum_with_back_dated_events(engine: Engine, example_plant: Path, seed: int) -> None:
    rng = random.Random(seed)
    load_plant(engine, example_plant)
    orders = [f"WO-{n}" for n in range(3)]
    for order in orders:
        release_order(engine, order, "FG-BRACKET", D(12), on=date(2026, 1, 15))
    n = 0
    built_days = 0
    for step in range(6):
        today = (START + timedelta(days=3 * step + 2)).date()
        events = []
        for _ in range(rng.randint(4, 12)):
            n += 1
            # Mostly events of the last days; one in four back-dated before days already checkpointed.
            back = rng.random() < 0.25
            offset = rng.randrange(0, (today - START.date()).days + 1) if back else (today - START.date()).days
            when = START + timedelta(days=offset - rng.randint(0, 1), seconds=rng.randrange(86_400))
            events.append(_event(rng, rng.choice(orders), n, when))
        outcomes = apply_events(engine, events)
        assert any(o.status is Status.APPLIED for o in outcomes)
        if step == 4:
            close_order(engine, orders[0], force=True)  # its WIP goes to variance accounts: out of the checkpoints
        results = refresh(engine, [JOURNAL, STOCK], today=today)
        assert all(r.skipped is None for r in results)
        built_days += len(results[0].days)
        assert_as_of_equals_full_sum(engine, [None, *(_moment(rng) for _ in range(8))])
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(checkpoint_days)) >= built_days > 0


def test_closed_orders_drop_out_of_the_checkpoints(engine: Engine, example_plant: Path) -> None:
    load_plant(engine, example_plant)
    release_order(engine, "WO-A", "FG-BRACKET", D(5), on=date(2026, 1, 15))
    release_order(engine, "WO-B", "FG-BRACKET", D(5), on=date(2026, 1, 15))
    apply_events(engine, [_event(random.Random(0), order, 1, START) | {"operation": 10, "rework": 0}
                          for order in ("WO-A", "WO-B")])
    close_order(engine, "WO-A", force=True)  # dated now: checkpoints from now on hold no WIP key of WO-A
    refresh(engine, [JOURNAL, STOCK], today=datetime.now(UTC).date() + timedelta(days=2))
    with engine.connect() as conn:
        last = conn.scalar(select(func.max(checkpoint_days.c.day)).where(checkpoint_days.c.source == "journal"))
        orders = set(conn.scalars(select(journal_checkpoints.c.work_order).where(
            journal_checkpoints.c.day == last, journal_checkpoints.c.account == "WIP")))
        assert orders == {"WO-B"}
        assert [r.key["work_order"] for r in reports.wip_value(conn).rows] == ["WO-B"]
    assert_as_of_equals_full_sum(engine, [None, START, START + timedelta(days=1)])


def test_a_build_skips_the_empty_days_between_opening_balances_and_production(engine: Engine,
                                                                             example_plant: Path) -> None:
    """Opening balances are dated 1970-01-01: the first build must not read 20,000 empty days one by one (it
    held a collector's shutdown for minutes)."""
    load_plant(engine, example_plant)
    release_order(engine, "WO-A", "FG-BRACKET", D(5), on=date(2026, 1, 15))
    apply_events(engine, [_event(random.Random(0), "WO-A", 1, START) | {"operation": 10, "rework": 0}])
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        refresh(engine, [JOURNAL, STOCK], today=START.date() + timedelta(days=2))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    with engine.connect() as conn:
        stock_days = set(conn.scalars(select(checkpoint_days.c.day).where(checkpoint_days.c.source == "stock")))
    assert stock_days == {date(1970, 1, 1), START.date()}
    assert len(statements) < 100, f"{len(statements)} statements for a build of two days with rows"
    assert_as_of_equals_full_sum(engine, [None, START, datetime(1990, 1, 1, tzinfo=UTC)])


@pytest.mark.postgres
def test_a_build_waits_for_transactions_holding_uncommitted_lines(pg_engine: Engine, example_plant: Path) -> None:
    engine = pg_engine
    load_plant(engine, example_plant)
    release_order(engine, "WO-1", "FG-BRACKET", D(10), on=date(2026, 1, 15))
    apply_events(engine, [_event(random.Random(1), "WO-1", 1, START)
                          | {"operation": 10, "good": 3, "scrap": 0, "rework": 0}])
    refresh(engine, [JOURNAL, STOCK], today=date(2026, 2, 3))
    # An older transaction takes line and move ids and stays open; a newer one commits a move with a larger id
    # meanwhile (into quarantine: no balance the older one holds locked).
    older = SqlUnitOfWork(engine).__enter__()
    apply_events_in(older, [_event(random.Random(2), "WO-1", 2, START)
                            | {"operation": 10, "good": 2, "scrap": 0, "rework": 0}])
    with engine.begin() as conn:
        post_moves(conn, [MoveRequest(idempotency_key="late-receipt", kind=MoveKind.RECEIPT, item="RM-BOLT",
                                      qty=D(5), to_location="QUAR", value=D("0.50"), effective_at=START)])
    skipped = refresh(engine, [JOURNAL, STOCK], today=date(2026, 2, 5), wait_seconds=0.3)
    assert all(r.skipped for r in skipped)
    done: list[Any] = []
    builder = threading.Thread(target=lambda: done.append(refresh(engine, [JOURNAL, STOCK], today=date(2026, 2, 5))))
    builder.start()
    time.sleep(0.3)
    assert not done  # still waiting for the older transaction
    older.commit()
    older.__exit__(None, None, None)
    builder.join(timeout=30)
    assert done and all(r.skipped is None for r in done[0]), "the build did not finish after the commit"
    moments: list[datetime | None] = [None, START, START + timedelta(days=1), START + timedelta(days=2, hours=3)]
    assert_as_of_equals_full_sum(engine, moments)


def test_on_hand_as_of_counts_both_sides_of_a_transfer(engine: Engine, example_plant: Path) -> None:
    """The stock checkpoints read both sides of a move in one scan (each move with the signs +1 at its
    destination and -1 at its source): transfers between two locations, some back-dated before a build, equal the
    plain sum per location, for every item, one item and one location on either side, at random moments."""
    rng = random.Random(5)
    load_plant(engine, example_plant)
    n = 0
    for step in range(4):
        today = (START + timedelta(days=2 * step + 2)).date()
        moves = []
        for _ in range(rng.randint(2, 4)):  # to the shop floor, then (some of it) on to finished goods
            n += 1
            qty = D(rng.randint(2, 4))
            for hop, (source, target) in enumerate((("STORES", "WIP"), ("WIP", "FG"))):
                when = START + timedelta(days=rng.randrange(0, 2 * step + 2), seconds=rng.randrange(86_400))
                moves.append(MoveRequest(idempotency_key=f"t{n}:{hop}", kind=MoveKind.TRANSFER, item="RM-BOLT",
                                         qty=qty - hop, from_location=source, to_location=target, effective_at=when))
        with engine.begin() as conn:
            post_moves(conn, [m for m in moves if m.qty > 0])
        refresh(engine, [STOCK], today=today)
        with engine.connect() as conn:
            for when in [None, *(_moment(rng) for _ in range(5))]:
                at = when or datetime(2100, 1, 1, tzinfo=UTC)
                for item, location in ((None, None), ("RM-BOLT", None), (None, "WIP"), ("RM-BOLT", "STORES")):
                    assert ledger_queries.onhand(conn, item, location, as_of=at) == \
                        ledger_queries.onhand_by_scan(conn, item, location, as_of=at), (when, item, location)
        with engine.connect() as conn:
            wip = ledger_queries.onhand(conn, "RM-BOLT", "WIP", as_of=datetime(2100, 1, 1, tzinfo=UTC))
        assert wip and wip[0].qty > 0  # the transfers did land somewhere besides STORES
