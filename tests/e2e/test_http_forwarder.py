"""Collectors forwarding over HTTP to a real ``mes-bridge serve``: a simulated machine's parts arrive as events, a
server killed and restarted mid-stream loses and doubles nothing, and a work order scanned through the API
(``POST /machines/{m}/work-order``) moves the machine's next parts to it, exactly as for in-process collectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from ledger import service as ledger_service
from ledger.model import MoveKind, MoveRequest
from mes_bridge.collectors.http_link import HttpScanFeed
from mes_bridge.collectors.runner import Collector
from mes_bridge.forwarder import HttpForwarder
from mes_bridge.plc_config import load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator
from mes_bridge.spool import Spool
from tests.e2e.api_server import ApiServer
from tests.integration.collectors.conftest import free_port, modbus_yaml
from tests.integration.wip_costing.plant import load_plant
from tests.waiting import wait_until
from wip_costing import reports
from wip_costing.service import release_order

pytestmark = pytest.mark.e2e

MACHINE = "LASER-1"  # at WC-LASER: operation 10 of FG-BRACKET
OPTIONS = {"modbus": {"backoff_base_s": 0.05, "backoff_cap_s": 0.3, "timeout_s": 0.5}}


def made_for(engine: Engine, order: str) -> Decimal:
    """Units completed (good + scrap) at operation 10 of ``order``, as the service recorded them."""
    with engine.connect() as conn:
        view = reports.order_view(conn, order)
    assert view is not None
    op = next(o for o in view["operations"] if o["operation"] == 10)
    return Decimal(op["completed_good"]) + Decimal(op["scrapped"])


@dataclass
class Rig:
    sim: ModbusSimulator
    collector: Collector
    server: ApiServer
    engine: Engine

    def produced(self) -> int:
        return sum(self.sim.machine(MACHINE).produced.values())


@asynccontextmanager
async def rig(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path, *, job: str | None
              ) -> AsyncIterator[Rig]:
    load_plant(engine, example_plant)
    with engine.begin() as conn:
        ledger_service.post_moves(conn, [MoveRequest(
            idempotency_key="test-steel", kind=MoveKind.RECEIPT, item="RM-STEEL", qty=Decimal(2000),
            to_location="STORES", value=Decimal("8000.00"), actor="test", reason="steel for the orders")])
    for order in ("WO-1", "WO-2"):
        release_order(engine, order, "FG-BRACKET", Decimal(1000), on=date(2026, 11, 22))
    server = ApiServer(db_url).start()
    token = server.token("collector", machines=(MACHINE,))
    folder = tmp_path / "plc"
    folder.mkdir()
    (folder / "laser.yaml").write_text(modbus_yaml(MACHINE, free_port(), rate=900, scrap_ratio="0.1", job=job,
                                                   poll_ms=50, operation=10, work_center="WC-LASER"))
    [config] = load_configs(folder)
    sim = ModbusSimulator([config])
    spool = Spool(tmp_path / "spool.db")
    forwarder = HttpForwarder(server.url, token, timeout=5)
    feed = HttpScanFeed(server.url, token, timeout=5)
    collector = Collector([config], spool, forwarder, client_options=OPTIONS, batch_size=50, scans=feed,
                          scan_interval_s=0.2, health_url=(server.url, token))
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: collector.sessions[MACHINE].state is not None, what="the baseline reading")
        yield Rig(sim, collector, server, engine)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await sim.stop()
        await forwarder.aclose()
        feed.close()
        spool.close()
        server.stop()


async def test_a_server_restart_mid_stream_loses_and_doubles_nothing(
        sqlite_engine: Engine, sqlite_url: str, example_plant: Path, tmp_path: Path) -> None:
    async with rig(sqlite_engine, sqlite_url, example_plant, tmp_path, job="WO-1") as r:
        r.sim.start_production()
        await wait_until(lambda: made_for(r.engine, "WO-1") >= 20, timeout_s=30, what="parts arriving over HTTP")
        r.server.stop(kill=True)  # kill -9 while batches are in flight
        await wait_until(lambda: r.collector.metrics.forward_errors > 0, timeout_s=20,
                         what="the forwarder noticing the server is gone")
        await wait_until(lambda: r.collector.spool.depth > 0, timeout_s=20,
                         what="parts spooled while the server is down")
        await asyncio.to_thread(r.server.start)
        await r.sim.stop_production()
        total = r.produced()
        await wait_until(lambda: made_for(r.engine, "WO-1") == total, timeout_s=60,
                         what=f"all {total} parts in WO-1 after the restart")
        await wait_until(lambda: r.collector.spool.depth == 0, timeout_s=30, what="the spool drained")
        forwarded = dict(r.collector.metrics.outcomes)
        with httpx.Client(base_url=r.server.url, timeout=10) as http:
            admin = {"Authorization": f"Bearer {r.server.token('admin')}"}
            await wait_until(lambda: bool(http.get("/collectors/health", headers=admin).json()["machines"]),
                             timeout_s=20, what="the collector's health report")
            health = http.get("/collectors/health", headers=admin).json()["machines"]
    assert made_for(sqlite_engine, "WO-1") == total > 20
    assert forwarded.get("rejected", 0) == 0 and forwarded.get("conflict", 0) == 0
    with sqlite_engine.connect() as conn:
        assert reports.list_problems(conn) == []
    assert [m["machine"] for m in health] == [MACHINE] and health[0]["reported_by"].startswith("collector:")


async def test_a_scan_through_the_api_moves_the_next_parts_to_the_new_order(
        sqlite_engine: Engine, sqlite_url: str, example_plant: Path, tmp_path: Path) -> None:
    async with rig(sqlite_engine, sqlite_url, example_plant, tmp_path, job=None) as r:
        terminal = r.server.token("terminal", work_centers=("WC-LASER",), name="T-LASER-1")
        with httpx.Client(base_url=r.server.url, headers={"Authorization": f"Bearer {terminal}"}) as http:
            scanned = http.post(f"/machines/{MACHINE}/work-order", json={"work_order": "WO-1", "operator": "E-107"})
            assert scanned.status_code == 200, scanned.text
            assert scanned.json()["operation"] == 10 and scanned.json()["work_center"] == "WC-LASER"
            session = r.collector.sessions[MACHINE]
            await wait_until(lambda: session.scanned_work_order == "WO-1", what="the collector taking the scan")
            r.sim.start_production()
            await wait_until(lambda: made_for(r.engine, "WO-1") >= 10, timeout_s=30, what="parts reaching WO-1")
            await r.sim.stop_production()
            first = r.produced()
            await wait_until(lambda: made_for(r.engine, "WO-1") == first, timeout_s=30,
                             what=f"{first} parts in WO-1")

            assert http.post(f"/machines/{MACHINE}/work-order", json={"work_order": "WO-2"}).status_code == 200
            assert http.get(f"/machines/{MACHINE}/work-order").json() == {"machine": MACHINE, "work_order": "WO-2"}
            await wait_until(lambda: session.scanned_work_order == "WO-2", what="the collector taking the scan")
            r.sim.start_production()
            await wait_until(lambda: made_for(r.engine, "WO-2") >= 10, timeout_s=30, what="parts reaching WO-2")
            await r.sim.stop_production()
            total = r.produced()
            await wait_until(lambda: made_for(r.engine, "WO-1") + made_for(r.engine, "WO-2") == total,
                             timeout_s=30, what=f"{total} parts in the two orders")
    assert made_for(sqlite_engine, "WO-1") == first
    assert made_for(sqlite_engine, "WO-2") == total - first >= 10
