"""Stateless API processes on one PostgreSQL database: two ``mes-bridge serve`` processes (one of them with two
workers) take events for the same orders at once, each event sent twice through different processes. Nothing is
applied twice and nothing exceeds what waits: exactly the order quantity completes, the rest is refused with the
quantity waiting, and the ledger's invariants hold."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from mes_bridge import demo
from mes_bridge.bootstrap import Services
from tests.e2e.api_server import ApiServer, cli, cli_json
from wip_costing.service import release_order

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ORDERS = ("WO-C1", "WO-C2")
PER_ORDER = 30  # events of one unit each at operation 10; the orders are for 10 units


def _event(order: str, n: int) -> dict[str, Any]:
    return {"event_id": f"conc:{order}:{n}", "work_order": order, "operation": 10, "good": 1, "kwh": "0.5",
            "machine": "LASER-1", "work_center": "WC-LASER", "provenance": "sensor",
            "source_time": f"2026-11-23T08:{n:02d}:00Z"}


def test_two_processes_never_apply_an_event_twice_nor_more_than_waits(pg_engine: Engine) -> None:
    demo.load_plant(Services(pg_engine), lambda _line: None)
    for order in ORDERS:
        release_order(pg_engine, order, "FG-BRACKET", Decimal(10), on=demo.RELEASE_DATE)
    db_url = pg_engine.url.render_as_string(hide_password=False)
    servers = [ApiServer(db_url, workers=2).start(), ApiServer(db_url).start()]
    try:
        token = servers[0].token("collector", machines=("LASER-1",))
        events = [_event(order, n) for order in ORDERS for n in range(PER_ORDER)]
        sends = events + events  # every event twice
        random.Random(7).shuffle(sends)
        batches = [sends[i:i + 5] for i in range(0, len(sends), 5)]

        def post(index_batch: tuple[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
            index, batch = index_batch
            with httpx.Client(base_url=servers[index % 2].url, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                answer = http.post("/events", json=batch)
                assert answer.status_code == 200, answer.text
                return list(answer.json())

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = [o for answer in pool.map(post, enumerate(batches)) for o in answer]
    finally:
        for server in servers:
            server.stop()

    applied = Counter(o["event_id"] for o in outcomes if o["status"] == "applied")
    assert all(count == 1 for count in applied.values()), "an event was applied twice"
    assert len(applied) == 2 * 10, f"{len(applied)} events applied, expected exactly the 20 units ordered"
    statuses = Counter(o["status"] for o in outcomes)
    assert statuses["conflict"] == 0 and sum(statuses.values()) == len(sends)
    refusals = [o["reason"] for o in outcomes if o["status"] == "rejected"]
    assert refusals and all("waiting" in reason for reason in refusals), refusals[:3]
    for order in ORDERS:
        view = cli_json(db_url, "wo", "show", order, "--json")
        first = view["operations"][0]
        assert (first["completed_good"], first["waiting"]) == ("10", "0"), (order, first)
        assert view["operations"][1]["waiting"] == "10"
    assert cli(db_url, "ledger", "check").stdout.strip() == "ledger check: ok"
    steel = cli_json(db_url, "ledger", "onhand", "RM-STEEL", "--json")["rows"]
    assert [r["qty"] for r in steel] == ["80"]
