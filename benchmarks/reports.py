"""WIP and on-hand "as of any moment" after a year of production: daily checkpoints against the plain full scan.

Builds a throw-away PostgreSQL database (``--pg-url``, an admin URL like the tests use) with SPEC's example plant
(BOM and routing dated a year earlier), then a year of production through the event path (``apply_events``,
batches of 1,000): ``--events`` one-unit completions (op 10 -> 20 -> 30, one in 50 at op 20 a scrap) over
``--orders`` orders worked on at once, each of ``--units`` units, released when the previous one in its slot
finishes (and that one closed); a receipt of the day's steel and bolts each morning; every 15 days one machine's
link is down from 20:00 for six hours and its spool drains after midnight's checkpoint (back-dated events). At
the end of every simulated day the checkpoint build runs, as the collector's worker does
(``wip_costing.checkpoints.refresh_all``). Then, in the same run and on the same data:
- WIP as of 10 moments across the year and now, by order and by operation: ``wip_value`` (checkpoints) beside
  ``wip_value_by_scan`` (the plain sum over every line), each ``--repeat`` times; the answers are compared;
- on-hand as of the same moments (every item, and one item): ``onhand`` beside ``onhand_by_scan``.
Prints medians, p99 and the ratio scan / checkpoints. Run:

    python benchmarks/reports.py [--events 1000000] [--orders 20] [--units 300] [--repeat 5] [--pg-url ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import drop_database, throwaway_database  # noqa: E402
from ledger import queries as ledger_queries  # noqa: E402
from ledger.checkpoints import stock_checkpoints  # noqa: E402
from ledger.model import MoveKind, MoveRequest  # noqa: E402
from ledger.service import post_moves  # noqa: E402
from ledger.tables import stock_moves  # noqa: E402
from mes_bridge import schema  # noqa: E402
from mes_common.db import make_engine  # noqa: E402
from tests.integration.wip_costing.plant import load_plant  # noqa: E402
from wip_costing import reports  # noqa: E402
from wip_costing.checkpoints import journal_checkpoints, refresh_all  # noqa: E402
from wip_costing.events import Status  # noqa: E402
from wip_costing.service import apply_events, close_order, release_order  # noqa: E402
from wip_costing.tables import journal_lines  # noqa: E402

BATCH = 1000
# Every OUTAGE_EVERY_DAYS days at 20:00 one machine (the orders of slot HELD_SLOT) loses its link for OUTAGE:
# its spool drains afterwards, after midnight's checkpoint, so its events are back-dated into checkpointed days.
OUTAGE_EVERY_DAYS, OUTAGE, HELD_SLOT = 15, timedelta(hours=6), 0


def plant(folder: Path) -> Path:
    """The example plant with its BOM and routing effective a year earlier."""
    shutil.copytree(ROOT / "mes_bridge" / "example_plant", folder, dirs_exist_ok=True)
    for name in ("bom.csv", "operations.csv"):
        path = folder / name
        path.write_text(path.read_text().replace("2026-01-01", "2025-01-01"))
    return folder


class Production:
    """``orders`` slots, each working one order of ``units`` units: one-unit completions 10, 20, 30, 10, ..."""

    def __init__(self, engine: Engine, orders: int, units: int) -> None:
        self.engine, self.units = engine, units
        self.step = [0] * orders
        self.order = [""] * orders
        self.count = 0
        self.closed = 0

    def release(self, slot: int, day: date) -> None:
        self.count += 1
        self.order[slot] = f"WO-{self.count:05d}"
        self.step[slot] = 0
        release_order(self.engine, self.order[slot], "FG-BRACKET", Decimal(self.units), on=day)

    def event(self, n: int, slot: int, when: datetime) -> dict[str, Any]:
        step = self.step[slot]
        op = (10, 20, 30)[step % 3]
        scrap = op == 20 and n % 50 == 0
        self.step[slot] += 2 if scrap else 1  # a scrapped unit never reaches op 30
        return {"event_id": f"E-{n}", "work_order": self.order[slot], "operation": op, "good": 0 if scrap else 1,
                "scrap": 1 if scrap else 0, "rework": 0, "kwh": "0.4", "provenance": "sensor",
                "source_time": when.isoformat()}


def build(engine: Engine, events: int, orders: int, units: int, start: datetime, end: datetime) -> dict[str, Any]:
    production = Production(engine, orders, units)
    span = (end - start) / events
    for slot in range(orders):
        production.release(slot, start.date())
    pending: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []  # a machine's events kept in its spool during a network outage
    hold_until: datetime | None = None
    refresh_s: list[float] = []
    day = start.date()
    receive(engine, day, events, start, end, units)
    applied = 0
    began = time.perf_counter()

    def flush() -> None:
        nonlocal applied
        if not pending:
            return
        outcomes = apply_events(engine, pending)
        bad = [o for o in outcomes if o.status is not Status.APPLIED]
        if bad:
            raise SystemExit(f"unexpected outcome {bad[0]}")
        applied += len(pending)
        pending.clear()

    for n in range(events):
        when = start + span * n
        if when.date() != day:  # the end of a day: the worker builds its checkpoint
            flush()
            day = when.date()
            if day.day == 1:
                print(f"  {day}: {applied:,} events applied in {time.perf_counter() - began:.0f} s", flush=True)
            t = time.perf_counter()
            results = refresh_all(engine, today=day)
            refresh_s.append(time.perf_counter() - t)
            assert all(r.skipped is None for r in results), results
            receive(engine, day, events, start, end, units)
        slot = n % orders
        if hold_until is not None and (when >= hold_until or production.step[HELD_SLOT] == 3 * units):
            pending.extend(held)  # the link is back: the spool drains, its events dated when they happened
            held.clear()
            hold_until = None
        if hold_until is None and when.timetuple().tm_yday % OUTAGE_EVERY_DAYS == 0 and when.hour == 20:
            hold_until = when + OUTAGE
        if production.step[slot] == 3 * units:  # the order in this slot is done: close it, release the next
            flush()
            close_order(engine, production.order[slot], force=True)
            production.closed += 1
            production.release(slot, day)
        event = production.event(n, slot, when)
        (held if hold_until is not None and slot == HELD_SLOT else pending).append(event)
        if len(pending) >= BATCH:
            flush()
    pending.extend(held)
    flush()
    seconds = time.perf_counter() - began
    t = time.perf_counter()
    refresh_all(engine)
    last_refresh = time.perf_counter() - t
    return {"applied": applied, "seconds": seconds, "orders": production.count, "closed": production.closed,
            "refresh_s": refresh_s, "last_refresh_s": last_refresh}


def receive(engine: Engine, day: date, events: int, start: datetime, end: datetime, units: int) -> None:
    """The morning's receipt: a day's steel (one per unit) and bolts (four per unit), with a margin."""
    per_day = events / 3 / max(1, (end - start).days) + units
    qty = Decimal(int(per_day * 1.5) + 10)
    when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=1)
    with engine.begin() as conn:
        post_moves(conn, [
            MoveRequest(idempotency_key=f"receipt/{day}/{item}", kind=MoveKind.RECEIPT, item=item, qty=qty * per,
                        to_location="STORES", value=qty * per * cost, effective_at=when, reason="daily receipt")
            for item, per, cost in (("RM-STEEL", 1, Decimal("4.00")), ("RM-BOLT", 4, Decimal("0.10")))
        ])


def timings(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """``repeat`` timed calls after an untimed one (statement compiled, pages cached)."""
    out, result = [], fn()
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return out, result


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _cases(conn: Connection, when: datetime | None) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """(query, through the checkpoints, the plain full scan) as of ``when``."""
    at = when or datetime.now(UTC)
    return [
        ("WIP by order", partial(reports.wip_value, conn, when, "order"),
         partial(reports.wip_value_by_scan, conn, when, "order")),
        ("WIP by operation", partial(reports.wip_value, conn, when, "operation"),
         partial(reports.wip_value_by_scan, conn, when, "operation")),
        ("on-hand, every item", partial(ledger_queries.onhand, conn, as_of=at),
         partial(ledger_queries.onhand_by_scan, conn, as_of=at)),
        ("on-hand of RM-STEEL", partial(ledger_queries.onhand, conn, "RM-STEEL", as_of=at),
         partial(ledger_queries.onhand_by_scan, conn, "RM-STEEL", as_of=at)),
    ]


def measure(engine: Engine, moments: list[datetime | None], repeat: int) -> None:
    kinds: dict[str, list[float]] = {}
    print(f"\n{'moment':<22}{'query':<26}{'checkpoints ms':>15}{'full scan ms':>14}{'scan/cp':>9}")
    with engine.connect() as conn:
        for when in moments:
            label = "now" if when is None else when.strftime("%Y-%m-%d %H:%M")
            cases = _cases(conn, when)
            for name, fast, plain in cases:
                fast_s, fast_result = timings(fast, repeat)
                plain_s, plain_result = timings(plain, repeat)
                assert fast_result == plain_result, (label, name)
                kinds.setdefault(name, []).extend(fast_s)
                kinds.setdefault(name + " (scan)", []).extend(plain_s)
                f, p = statistics.median(fast_s), statistics.median(plain_s)
                print(f"{label:<22}{name:<26}{f * 1000:>15.1f}{p * 1000:>14.1f}{p / f:>8.1f}x")
    print(f"\n{'query (all moments)':<34}{'median ms':>10}{'p99 ms':>9}")
    for name, values in kinds.items():
        print(f"{name:<34}{statistics.median(values) * 1000:>10.1f}{p99(values) * 1000:>9.1f}")


def moments(start: datetime) -> list[datetime | None]:
    """10 moments across the year from ``start`` (at different hours), and now (None)."""
    return [*(start + timedelta(days=36.5 * k + 17, hours=7 * k % 24, minutes=13) for k in range(10)), None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=20, help="orders worked on at once")
    parser.add_argument("--units", type=int, default=300, help="units per order")
    parser.add_argument("--repeat", type=int, default=5, help="timings per moment and query")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--measure", metavar="DATABASE", help="only measure a database kept by an earlier run")
    args = parser.parse_args()
    end = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC) - timedelta(seconds=1)
    start = end - timedelta(days=365)
    if args.measure:
        engine = make_engine(make_url(args.pg_url).set(database=args.measure).render_as_string(hide_password=False))
        with engine.connect() as conn:
            first = conn.scalar(select(func.min(journal_lines.c.effective_at)))
        assert first is not None, "no journal lines"
        measure(engine, moments(datetime.combine(first.date(), datetime.min.time(), UTC)), args.repeat)
        engine.dispose()
        return
    engine = throwaway_database(args.pg_url)
    try:
        schema.upgrade(engine)
        with tempfile.TemporaryDirectory() as folder:
            load_plant(engine, plant(Path(folder)))
        built = build(engine, args.events, args.orders, args.units, start, end)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
            def count(table: Any) -> int:
                return int(conn.scalar(select(func.count()).select_from(table)) or 0)

            lines, moves = count(journal_lines), count(stock_moves)
            cp_rows = count(journal_checkpoints) + count(stock_checkpoints)
        refresh = built["refresh_s"]
        print(f"PostgreSQL {engine.dialect.server_version_info}: {built['applied']:,} events from {start:%Y-%m-%d} "
              f"to {end:%Y-%m-%d} in {built['seconds']:.0f} s ({built['applied'] / built['seconds']:,.0f}/s, "
              f"with the daily receipts and builds), {built['orders']:,} orders ({built['closed']:,} closed), "
              f"{lines:,} journal lines, {moves:,} stock moves, {cp_rows:,} checkpoint rows")
        print(f"checkpoint build at the end of each day: median {statistics.median(refresh) * 1000:.0f} ms, "
              f"max {max(refresh) * 1000:.0f} ms ({len(refresh)} builds); "
              f"last build {built['last_refresh_s'] * 1000:.0f} ms")
        measure(engine, moments(start), args.repeat)
    finally:
        if args.keep:
            engine.dispose()
            print(f"kept database {engine.url.database}")
        else:
            drop_database(engine, args.pg_url)


if __name__ == "__main__":
    main()
