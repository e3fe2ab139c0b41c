"""What each foreign key the event path's tables leave out would cost ``apply_events``, measured finely.

One throw-away PostgreSQL database, the example plant and 20 orders as in ``apply_events.py``. For each candidate
(``apply_events.CANDIDATE_CONSTRAINTS``) batches of ``--batch`` events are applied in pairs, one without the
constraint and one with it (added NOT VALID: enforced for new rows, old rows not re-checked; dropped again right
after), the order within each pair alternating, so both sides see the same load on a shared host. Prints, per
candidate, the median time per batch without and with it and the median of the per-pair slow-downs. Run:

    python benchmarks/foreign_keys.py [--pairs 9] [--batch 1000] [--pg-url postgresql+psycopg://...]
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

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import drop_database, throwaway_database  # noqa: E402
from benchmarks.apply_events import CANDIDATE_CONSTRAINTS, ORDERS, events  # noqa: E402
from mes_bridge import schema  # noqa: E402
from mes_bridge.bootstrap import Services  # noqa: E402
from tests.integration.wip_costing.plant import load_plant  # noqa: E402
from wip_costing.commands import ApplyEvents, ReleaseOrder  # noqa: E402
from wip_costing.events import Status  # noqa: E402

NAME = "fk_candidate"


def timed_batch(services: Services, size: int) -> float:
    batch = events(f"fk-{uuid.uuid4().hex[:8]}", size)
    start = time.perf_counter()
    outcomes = services.handle(ApplyEvents(batch))
    elapsed = time.perf_counter() - start
    if any(o.status is not Status.APPLIED for o in outcomes):
        raise SystemExit(f"unexpected outcome {next(o for o in outcomes if o.status is not Status.APPLIED)}")
    return elapsed


def with_name(statement: str) -> str:
    """The candidate's statement, naming its constraint (to drop it again) and NOT VALID."""
    table = statement.split()[2]
    body = statement.split(" ADD ", 1)[1]
    deferrable = ""
    if " DEFERRABLE" in body:
        body, deferrable = body.split(" DEFERRABLE", 1)
        deferrable = " DEFERRABLE" + deferrable
    return f"ALTER TABLE {table} ADD CONSTRAINT {NAME} {body}{deferrable} NOT VALID"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=9, help="batch pairs per candidate (default 9)")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch (default 1000)")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    engine = throwaway_database(args.pg_url)
    services = Services(engine)
    try:
        schema.upgrade(engine)
        load_plant(engine, ROOT / "mes_bridge" / "example_plant")
        with engine.begin() as conn:
            conn.execute(text("UPDATE stock_balances SET qty = qty * 100000, value = value * 100000"))
        for n in range(ORDERS):
            services.handle(ReleaseOrder(f"WO-{n}", "FG-BRACKET", Decimal(10_000_000), on=date(2026, 11, 22)))
        timed_batch(services, args.batch)  # warm-up
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        print(f"{args.pairs} pairs of {args.batch}-event batches per candidate, order alternating within pairs")
        print(f"{'candidate':<15} {'without (ms)':>13} {'with (ms)':>10} {'slow-down (median of pairs)':>28}")
        for key, statement in CANDIDATE_CONSTRAINTS.items():
            add = with_name(statement)
            table = statement.split()[2]
            drop = f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {NAME}"
            without, with_, ratios = [], [], []
            for pair in range(args.pairs):
                times = {}
                for side in ((False, True) if pair % 2 == 0 else (True, False)):
                    with engine.begin() as conn:
                        conn.execute(text(add if side else drop))
                    times[side] = timed_batch(services, args.batch)
                with engine.begin() as conn:
                    conn.execute(text(drop))
                without.append(times[False])
                with_.append(times[True])
                ratios.append(times[True] / times[False] - 1)
            print(f"{key:<15} {statistics.median(without) * 1000:>13.0f} {statistics.median(with_) * 1000:>10.0f} "
                  f"{statistics.median(ratios) * 100:>+27.1f}%")
    finally:
        drop_database(engine, args.pg_url)


if __name__ == "__main__":
    main()
