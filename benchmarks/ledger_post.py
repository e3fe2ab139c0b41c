"""Stock moves per second through ``ledger.service.post_moves``, beside plain-driver inserts in the same run.

Each ledger move is an issue of one unit (locks, idempotency lookup, moving average, move insert, balance
update), over ``ITEMS`` items so a batch touches many balances. Measured one move per transaction and batched
(``--batch`` moves per transaction), on SQLite (a temp file, WAL, synchronous=FULL) and on PostgreSQL (a
throw-away database created and dropped here). The baseline inserts similar rows into a similar table with the
plain driver (sqlite3 / psycopg): the same count per transaction, executemany for batches. Run:

    python benchmarks/ledger_post.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--no-pg]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import drop_database, throwaway_database  # noqa: E402
from ledger import repository as repo  # noqa: E402
from ledger import service as ledger_service  # noqa: E402
from ledger.model import Item, ItemKind, Location, LocationKind, MoveKind, MoveRequest  # noqa: E402
from ledger.posting import post  # noqa: E402
from mes_bridge import schema  # noqa: E402
from mes_common.db import make_engine  # noqa: E402

ITEMS = 100
BASELINE_DDL = """CREATE TABLE bench_moves (id {id}, idempotency_key VARCHAR(200) NOT NULL UNIQUE, item VARCHAR(64),
    qty {num}, from_location VARCHAR(64), value {num}, actor VARCHAR(64), recorded_at VARCHAR(40))"""


def seed(engine: Engine) -> None:
    with engine.begin() as conn:
        repo.add_items(conn, [Item(f"IT-{i:03d}", f"item {i}", "pcs", ItemKind.RAW) for i in range(ITEMS)])
        repo.add_locations(conn, [Location("STORES", "Stores", LocationKind.STORES)])
        ledger_service.post_moves(conn, [MoveRequest(idempotency_key=f"seed-{i}", kind=MoveKind.RECEIPT,
                                                     item=f"IT-{i:03d}", qty=Decimal(1_000_000), to_location="STORES",
                                                     value=Decimal("3000000.00"))
                                         for i in range(ITEMS)])  # fmt: skip


def issues(prefix: str, count: int) -> list[MoveRequest]:
    return [
        MoveRequest(
            idempotency_key=f"{prefix}-{n}",
            kind=MoveKind.ISSUE,
            item=f"IT-{n % ITEMS:03d}",
            qty=Decimal(1),
            from_location="STORES",
            actor="bench",
            reason="benchmark",
        )
        for n in range(count)
    ]


def ledger_rate(engine: Engine, batch: int, count: int, hot_path: bool = False) -> float:
    """Moves/s through ``post_moves``, or (``hot_path``) through lock_balances + pure post + write_moves, the
    path the event applier uses (it does its own idempotency by event id)."""
    requests = issues(f"b{batch}-{hot_path:d}-{uuid.uuid4().hex[:6]}", count)
    start = time.perf_counter()
    for i in range(0, count, batch):
        chunk = requests[i : i + batch]
        with engine.begin() as conn:
            if hot_path:
                balances = repo.lock_balances(conn, [k for r in chunk for k in r.balance_keys()])
                repo.write_moves(conn, [post(balances, r) for r in chunk], balances)
            else:
                ledger_service.post_moves(conn, chunk)
    return count / (time.perf_counter() - start)


def baseline_rows(prefix: str, count: int) -> list[tuple[object, ...]]:
    return [(f"{prefix}-{n}", f"IT-{n % ITEMS:03d}", Decimal(1), "STORES", Decimal("3.00"), "bench",
             "2026-11-22T08:00:00+00:00") for n in range(count)]  # fmt: skip


def sqlite_baseline(path: Path, batch: int, count: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        BASELINE_DDL.format(id="INTEGER PRIMARY KEY", num="BIGINT").replace(
            "CREATE TABLE", "CREATE TABLE IF NOT EXISTS"
        )
    )
    rows = [
        (k, i, int(q * 10**6), f, int(v * 100), a, r) for k, i, q, f, v, a, r in baseline_rows(uuid.uuid4().hex, count)
    ]  # type: ignore[operator]
    sql = (
        "INSERT INTO bench_moves (idempotency_key, item, qty, from_location, value, actor, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    start = time.perf_counter()
    for i in range(0, count, batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, rows[i : i + batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return count / elapsed


def pg_baseline(dsn: str, batch: int, count: int) -> float:
    rows = baseline_rows(uuid.uuid4().hex, count)
    sql = ("INSERT INTO bench_moves (idempotency_key, item, qty, from_location, value, actor, recorded_at) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s)")  # fmt: skip
    with psycopg.connect(dsn) as db:
        db.execute(BASELINE_DDL.format(id="BIGSERIAL PRIMARY KEY", num="NUMERIC(24, 6)").replace(
            "CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))  # fmt: skip
        db.commit()
        start = time.perf_counter()
        for i in range(0, count, batch):
            with db.cursor() as cur:
                cur.executemany(sql, rows[i : i + batch])
            db.commit()
        return count / (time.perf_counter() - start)


Run = tuple[str, int, int, bool]  # label, moves per transaction, moves, hot path


def report(db: str, runs: list[Run], ledger: Callable[[int, int, bool], float],
           baseline: Callable[[int, int], float]) -> None:  # fmt: skip
    for label, batch, count, hot in runs:
        ours, base = ledger(batch, count, hot), baseline(batch, count)
        print(f"{db:10} {label:22} {ours:10,.0f} moves/s   baseline {base:10,.0f} rows/s   ratio {ours / base:5.2f}")


def run_sqlite(runs: list[Run]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+pysqlite:///{Path(tmp) / 'ledger.db'}")
        schema.upgrade(engine)
        seed(engine)
        report("sqlite", runs, lambda b, c, h: ledger_rate(engine, b, c, h),
               lambda b, c: sqlite_baseline(Path(tmp) / "baseline.db", b, c))  # fmt: skip
        with engine.connect() as conn:
            assert repo.check(conn) == [], "ledger invariants broken by the benchmark"
        engine.dispose()


def run_pg(admin_url: str, runs: list[Run]) -> None:
    engine = throwaway_database(admin_url)
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        schema.upgrade(engine)
        seed(engine)
        report("postgresql", runs, lambda b, c, h: ledger_rate(engine, b, c, h), lambda b, c: pg_baseline(dsn, b, c))
        with engine.connect() as conn:
            assert repo.check(conn) == [], "ledger invariants broken by the benchmark"
    finally:
        drop_database(engine, admin_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--single", type=int, default=1000, help="moves posted one per transaction")
    parser.add_argument("--batched", type=int, default=20000, help="moves posted in batches")
    parser.add_argument("--batch", type=int, default=500, help="moves per transaction when batched")
    args = parser.parse_args()
    runs = [
        ("1 per transaction", 1, args.single, False),
        (f"{args.batch} per transaction", args.batch, args.batched, False),
        (f"{args.batch}/tx, write_moves", args.batch, args.batched, True),
    ]
    run_sqlite(runs)
    if not args.no_pg:
        run_pg(args.pg, runs)


if __name__ == "__main__":
    main()
