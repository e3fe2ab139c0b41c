"""Events/s of ``apply_events`` on PostgreSQL with full postings, beside a raw psycopg insert baseline.

Each event is a completion with every posting: material issue (stock move), conversion costs, transfer to the
next operation or receipt into finished goods (stock move), journal lines, pool updates, the event record.
Batches of 1, 100 and 1000 events; the baseline inserts the same number of one-row events with plain psycopg
(executemany, one commit per batch) right after each run. Each batch size runs ``--repeat`` times (the host is
shared and its speed drifts from minute to minute): the median, the range, and the ratio of the medians. Run:

    python benchmarks/apply_events.py [--events N] [--repeat 3] [--pg-url postgresql+psycopg://...]
        [--switch-interval S] [--batches 1,100,1000] [--add-constraint NAME ...]

``--switch-interval`` applies the batches as the spool-draining worker does when asked to
(``mes-bridge collect --switch-interval S``: the interpreter's switch interval lowered while a batch is applied);
without it, as the API and a default collector do. ``--add-constraint`` adds one of the foreign keys the schema
leaves out (``CANDIDATE_CONSTRAINTS``) to the benchmark's database, to measure what it would cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import drop_database, throwaway_database  # noqa: E402
from mes_bridge import schema  # noqa: E402
from mes_bridge.bootstrap import Services  # noqa: E402
from mes_bridge.forwarder import switch_interval  # noqa: E402
from tests.integration.wip_costing.plant import load_plant  # noqa: E402
from wip_costing.commands import ApplyEvents, ReleaseOrder  # noqa: E402
from wip_costing.events import Status  # noqa: E402

ORDERS = 20
# Foreign keys the event path's tables leave out (see wip_costing/tables.py), to measure their cost (the
# operation_events.work_order key was one, measured at ~2 %, and is in the schema since migration 0007).
CANDIDATE_CONSTRAINTS = {
    "journal-order": "ALTER TABLE journal_lines ADD FOREIGN KEY (work_order) REFERENCES work_orders (id)",
    # Journal lines are loaded before the moves and events they name (streaming writer): checked at commit.
    "journal-move": "ALTER TABLE journal_lines ADD FOREIGN KEY (stock_move_id) REFERENCES stock_moves (id) "
                    "DEFERRABLE INITIALLY DEFERRED",
    "journal-event": "ALTER TABLE journal_lines ADD FOREIGN KEY (event_id) REFERENCES operation_events (event_id) "
                     "DEFERRABLE INITIALLY DEFERRED",
}


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` completions of one unit, cycling op 10 -> 20 -> 30 over ``ORDERS`` orders (every op has units)."""
    out = []
    for n in range(count):
        order = f"WO-{n % ORDERS}"
        op = (10, 20, 30)[(n // ORDERS) % 3]
        out.append({"event_id": f"{prefix}-{n}", "work_order": order, "operation": op, "good": 1, "scrap": 0,
                    "rework": 0, "kwh": "0.4", "provenance": "sensor", "source_time": "2026-11-22T08:00:00Z"})
    return out


def run_apply(services: Services, batch: int, count: int, interval: float | None = None) -> float:
    evs = events(f"b{batch}-{uuid.uuid4().hex[:6]}", count)
    start = time.perf_counter()
    for i in range(0, count, batch):
        with switch_interval(interval):
            outcomes = services.handle(ApplyEvents(evs[i:i + batch]))
        bad = [o for o in outcomes if o.status is not Status.APPLIED]
        if bad:
            raise SystemExit(f"unexpected outcome {bad[0]}")
    return count / (time.perf_counter() - start)


def run_baseline(dsn: str, batch: int, count: int) -> float:
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (event_id text PRIMARY KEY, payload text, "
                     "recorded_at timestamptz DEFAULT now())")
        conn.commit()
        tag = uuid.uuid4().hex[:6]
        start = time.perf_counter()
        for i in range(0, count, batch):
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO bench_baseline (event_id, payload) VALUES (%s, %s)",
                                [(f"{tag}-{n}", "{}") for n in range(i, min(i + batch, count))])
            conn.commit()
        return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events per batch size (default 3000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per batch size (default 3)")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="seconds: the interpreter's switch interval while a batch is applied (default: as set)")
    parser.add_argument("--batches", default="1,100,1000", help="batch sizes, comma-separated (default 1,100,1000)")
    parser.add_argument("--add-constraint", action="append", default=[], choices=sorted(CANDIDATE_CONSTRAINTS),
                        help="add this foreign key to the benchmark's database first (repeatable)")
    args = parser.parse_args()
    engine = throwaway_database(args.pg_url)
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    services = Services(engine)  # as the API and the CLI run commands: handlers in units of work, shared caches
    try:
        schema.upgrade(engine)
        load_plant(engine, ROOT / "mes_bridge" / "example_plant")
        with engine.begin() as conn:  # plenty of stock for every batch size
            conn.execute(text("UPDATE stock_balances SET qty = qty * 10000, value = value * 10000"))
            for name in args.add_constraint:
                conn.execute(text(CANDIDATE_CONSTRAINTS[name]))
        for n in range(ORDERS):
            services.handle(ReleaseOrder(f"WO-{n}", "FG-BRACKET", Decimal(1_000_000), on=date(2026, 11, 22)))
        services.handle(ApplyEvents(events("warmup", 300)))
        with engine.connect() as conn:  # what autovacuum does on a live system: planner statistics
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        print(f"PostgreSQL {engine.dialect.server_version_info}, {args.events} events per run, {ORDERS} orders, "
              f"{args.repeat} runs per batch size, switch interval "
              f"{'as set' if args.switch_interval is None else args.switch_interval}, "
              f"added constraints: {', '.join(args.add_constraint) or 'none'}")
        print(f"{'batch':>6} {'apply_events/s':>15} {'(range)':>15} {'raw insert/s':>13} {'ratio':>7}")
        for batch in (int(b) for b in args.batches.split(",")):
            rates, bases = [], []
            for _ in range(args.repeat):
                with engine.connect() as conn:  # fresh planner statistics for each run, as autovacuum keeps them
                    conn.exec_driver_sql("ANALYZE")
                    conn.commit()
                count = min(args.events, 1000) if batch == 1 else args.events
                rates.append(run_apply(services, batch, count, args.switch_interval))
                bases.append(run_baseline(dsn, batch, count))
            rate, base = statistics.median(rates), statistics.median(bases)
            spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
            print(f"{batch:>6} {rate:>15,.0f} {spread:>15} {base:>13,.0f} {rate / base:>7.2f}")
    finally:
        drop_database(engine, args.pg_url)


if __name__ == "__main__":
    main()
