"""Concurrent postings from separate connections (threads): no negative stock, no double posting, no deadlock.

Runs on PostgreSQL (row locks, the production case) and SQLite (BEGIN IMMEDIATE serialises writers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from ledger import repository as repo
from ledger import service as ledger_service
from ledger.model import InsufficientStock, MoveKind, MoveRequest, PostedMove
from ledger.tables import stock_moves
from mes_common.db import make_engine

D = Decimal


@pytest.fixture
def own_connections(plant: Engine, db_url: str) -> Iterator[Engine]:
    """An engine that opens a new database connection for every transaction (one per thread)."""
    engine = make_engine(db_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def run_parallel(n: int, task: Callable[[int], object], workers: int | None = None) -> list[object]:
    """Run task(0..n-1) on ``workers`` threads (default n) released together; results or exceptions, in order.

    PostgreSQL allows ~100 connections for every test run on this server, so callers keep ``workers`` well below.
    """
    workers = workers or n
    start = threading.Barrier(workers)
    results: list[object] = [None] * n

    def worker(w: int) -> None:
        start.wait(timeout=30)
        for i in range(w, n, workers):
            try:
                results[i] = task(i)
            except Exception as exc:  # collected and asserted on by the test
                results[i] = exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(worker, w) for w in range(workers)]:
            future.result(timeout=120)
    return results


def receive(engine: Engine, item: str, qty: str, value: str, to: str = "STORES") -> None:
    with engine.begin() as conn:
        ledger_service.post_moves(conn, [MoveRequest(idempotency_key=f"seed:{item}:{to}", kind=MoveKind.RECEIPT,
                                                     item=item, qty=D(qty), to_location=to,
                                                     value=D(value))])  # fmt: skip


def test_fifty_concurrent_issues_against_ten_units(own_connections: Engine) -> None:
    receive(own_connections, "RM-STEEL", "10", "40.00")

    def issue_one(i: int) -> PostedMove:
        with own_connections.begin() as conn:
            request = MoveRequest(idempotency_key=f"issue-{i}", kind=MoveKind.ISSUE, item="RM-STEEL", qty=D(1),
                                  from_location="STORES")  # fmt: skip
            [move] = ledger_service.post_moves(conn, [request])
            return move

    results = run_parallel(50, issue_one)
    done = [r for r in results if isinstance(r, PostedMove)]
    refused = [r for r in results if isinstance(r, InsufficientStock)]
    assert len(done) == 10 and len(refused) == 40, [r for r in results if isinstance(r, BaseException)][:3]
    assert sorted(m.value for m in done) == [D("4.00")] * 10
    assert all(e.available == 0 and "requested 1, available 0" in e.message for e in refused)
    with own_connections.connect() as conn:
        assert repo.onhand(conn, "RM-STEEL") == []
        assert repo.check(conn) == []


def test_same_key_posted_one_hundred_times_in_parallel_makes_one_move(own_connections: Engine) -> None:
    """100 posts of one request from 25 threads (each transaction on its own new connection)."""
    receive(own_connections, "RM-BOLT", "500", "50.00")
    request = MoveRequest(idempotency_key="LASER-1:parts:0:1041/bolts", kind=MoveKind.ISSUE, item="RM-BOLT",
                          qty=D(4), from_location="STORES", reference="LASER-1:parts:0:1041")  # fmt: skip

    def post_it(_: int) -> PostedMove:
        with own_connections.begin() as conn:
            [move] = ledger_service.post_moves(conn, [request])
            return move

    results = run_parallel(100, post_it, workers=25)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert {r.id for r in results if isinstance(r, PostedMove)} != {None}
    assert len({r.id for r in results if isinstance(r, PostedMove)}) == 1
    with own_connections.connect() as conn:
        assert conn.execute(select(func.count()).select_from(stock_moves)).scalar_one() == 2
        assert [(r.qty, r.value) for r in repo.onhand(conn, "RM-BOLT")] == [(D("496"), D("49.60"))]


def test_crossing_transfers_into_new_balances_never_deadlock(own_connections: Engine) -> None:
    receive(own_connections, "RM-BOLT", "1000", "100.00", to="STORES")
    receive(own_connections, "RM-BOLT", "1000", "100.00", to="STORES-2")

    def shuffle(i: int) -> int:
        src, dst = ("STORES", "STORES-2") if i % 2 else ("STORES-2", "STORES")
        moved = 0
        for n in range(5):
            batch = [
                MoveRequest(idempotency_key=f"x{i}-{n}-a", kind=MoveKind.TRANSFER, item="RM-BOLT", qty=D(3),
                            from_location=src, to_location=dst),
                # Lands in a balance that does not exist yet, created concurrently by several threads.
                MoveRequest(idempotency_key=f"x{i}-{n}-b", kind=MoveKind.TRANSFER, item="RM-BOLT", qty=D(1),
                            from_location=dst, to_location="FG"),
            ]  # fmt: skip
            with own_connections.begin() as conn:
                ledger_service.post_moves(conn, batch)
            moved += 1
        return moved

    results = run_parallel(20, shuffle)
    assert results == [5] * 20
    with own_connections.connect() as conn:
        rows = {r.location: (r.qty, r.value) for r in repo.onhand(conn, "RM-BOLT")}
        assert repo.check(conn) == []
    assert rows["FG"][0] == D(100)
    assert sum(q for q, _ in rows.values()) == D(2000)
    assert sum(v for _, v in rows.values()) == D("200.00")
