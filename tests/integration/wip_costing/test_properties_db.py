"""A smaller property test through the database: random batches of events (scrap, rework, bad ones mixed in)
applied with ``apply_events``; journal, pools and ledger stay consistent to the cent."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.tables import stock_balances
from wip_costing import reports
from wip_costing.events import Status
from wip_costing.service import apply_events, close_order, release_order
from wip_costing.tables import wo_operations

from .plant import load_plant

D = Decimal
_ids = itertools.count()

event_specs = st.lists(
    st.tuples(st.sampled_from([10, 20, 30, 99]), st.integers(0, 6), st.integers(0, 3), st.integers(0, 3),
              st.sampled_from(["sensor", "scan", "manual"]), st.booleans()),
    min_size=1, max_size=30,
)


def _stock_value(engine: Engine, item: str) -> Decimal:
    with engine.connect() as conn:
        values = conn.execute(select(stock_balances.c.value).where(stock_balances.c.item == item)).scalars()
        return sum(values, D(0))


def test_random_batches_through_the_database(engine: Engine, example_plant: Path) -> None:
    load_plant(engine, example_plant)
    steel0, bolts0 = _stock_value(engine, "RM-STEEL"), _stock_value(engine, "RM-BOLT")

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(specs=event_specs, batch=st.integers(1, 10), close=st.booleans())
    def run(specs: list[tuple[int, int, int, int, str, bool]], batch: int, close: bool) -> None:
        order = f"WO-{next(_ids)}"
        release_order(engine, order, "FG-BRACKET", D(8), on=date(2026, 11, 22))
        events = [
            {"event_id": f"{order}:{n}", "work_order": order, "operation": op, "good": good, "scrap": scrap,
             "rework": rework if op == 30 else 0, "provenance": prov, "source_time": "2026-11-22T08:00:00Z",
             **({"kwh": "1.5"} if meter else {})}
            for n, (op, good, scrap, rework, prov, meter) in enumerate(specs)
            if good + scrap + (rework if op == 30 else 0) > 0
        ]
        for start in range(0, len(events), batch):
            outcomes = apply_events(engine, events[start:start + batch])
            assert all(o.status in (Status.APPLIED, Status.REJECTED) for o in outcomes)
        if close:
            close_order(engine, order, force=True)
        with engine.connect() as conn:
            bal = reports.balances(conn)
            assert reports.unbalanced_entries(conn) == []
            c = wo_operations.c
            for row in conn.execute(select(wo_operations).where(c.work_order == order)):
                assert row.received == row.completed_good + row.scrapped + row.reworked + row.written_off + \
                    row.fp_qty + row.rw_qty
                assert (row.fp_qty == 0) <= (row.fp_value == 0) and (row.rw_qty == 0) <= (row.rw_value == 0)
            by_op = {(r.key["work_order"], r.key["operation"]): r.value
                     for r in reports.wip_value(conn, by="operation").rows}
            for row in conn.execute(select(wo_operations).where(c.work_order == order)):
                assert by_op.get((order, row.operation), D(0)) == row.fp_value + row.rw_value
        get = lambda name: bal.get(name, D(0))  # noqa: E731
        cost_in = -(get("RM-INV") + get("ABSORBED-LABOR") + get("ABSORBED-MACHINE") + get("ABSORBED-ENERGY"))
        out = sum((get(a) for a in ("FG-INV", "SCRAP-LOSS", "WIP", "VAR-MATERIAL", "VAR-LABOR", "VAR-ENERGY",
                                    "VAR-SCRAP")), D(0))
        assert cost_in == out
        assert get("FG-INV") == _stock_value(engine, "FG-BRACKET")
        assert -get("RM-INV") == steel0 + bolts0 - _stock_value(engine, "RM-STEEL") - _stock_value(engine, "RM-BOLT")

    run()
