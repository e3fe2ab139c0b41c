"""The work order scanned at a machine's terminal drives a machine that has no job tag (both protocols).

Real simulated machines on 127.0.0.1, a real collector forwarding in-process into a SQLite database loaded with
SPEC's example plant, scans recorded in that database (as ``mes-bridge wo scan`` records them) and followed by
the collector's ``DatabaseScanFeed``. Counts made before any scan are held, then go to the first scanned order;
counts made before a later scan stay with the previous order, exactly; the new order applies after a reading
taken at once when the scan is noticed (not at the next poll or notification).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from ledger import service as ledger_service
from ledger.model import MoveKind, MoveRequest
from mes_bridge.bootstrap import Services
from mes_bridge.collectors.core import MachineSession
from mes_bridge.collectors.opcua import Backoff
from mes_bridge.collectors.runner import Collector
from mes_bridge.collectors.scan_feed import DatabaseScanFeed
from mes_bridge.forwarder import InProcessForwarder
from mes_bridge.plc_config import MachineConfig, load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from mes_bridge.spool import Spool
from tests.integration.collectors.conftest import free_port, modbus_yaml, wait_until
from tests.integration.collectors.opcua_helpers import machine_config
from tests.integration.wip_costing.plant import load_plant
from wip_costing import reports
from wip_costing.scans import record_scan
from wip_costing.service import release_order

pytestmark = pytest.mark.integration

MACHINE = "LASER-1"  # at WC-LASER (operation 10 of FG-BRACKET) in the example plant's work centers
OPTIONS = {
    "modbus": {"backoff_base_s": 0.05, "backoff_cap_s": 0.3, "timeout_s": 0.5},
    "opcua": {"backoff": Backoff(initial=0.1, maximum=0.5), "watchdog_interval": 0.5},
}


def job_less_config(protocol: str, folder: Path, poll_ms: int) -> MachineConfig:
    port = free_port()
    if protocol == "modbus":
        (folder / "laser.yaml").write_text(modbus_yaml(MACHINE, port, rate=900, scrap_ratio="0.1", job=None,
                                                       poll_ms=poll_ms, operation=10, work_center="WC-LASER"))
        config = load_configs(folder)[0]
    else:
        config = machine_config(folder, MACHINE, port, parts_per_minute=900, scrap_ratio="0.1",
                                publishing_interval_ms=50, extra={"job": None})
    assert config.job is None or config.job.reg is not None  # Modbus: a job register left at 0, "no job"
    return config


def made_for(engine: Engine, order: str) -> Decimal:
    """Units completed (good + scrap) at operation 10 of ``order``, as the service recorded them."""
    with engine.connect() as conn:
        view = reports.order_view(conn, order)
    assert view is not None
    op = next(o for o in view["operations"] if o["operation"] == 10)
    return Decimal(op["completed_good"]) + Decimal(op["scrapped"])


def scan(engine: Engine, order: str) -> None:
    with engine.begin() as conn:
        record_scan(conn, MACHINE, order, operator="E-107", terminal="T-LASER-1")


@dataclass
class Rig:
    sim: ModbusSimulator | OpcUaSimulator
    collector: Collector
    engine: Engine

    @property
    def session(self) -> MachineSession:
        return self.collector.sessions[MACHINE]

    def produced(self) -> int:
        if isinstance(self.sim, ModbusSimulator):
            return sum(self.sim.machine(MACHINE).produced.values())
        return sum(self.sim.produced(MACHINE).values())

    def records(self) -> list[str]:
        return [r["kind"] for r in self.collector.metrics.health()["machines"][MACHINE]["records"]]


@asynccontextmanager
async def rig(protocol: str, engine: Engine, example_plant: Path, tmp_path: Path, *,
              poll_ms: int = 50) -> AsyncIterator[Rig]:
    load_plant(engine, example_plant)
    with engine.begin() as conn:  # steel for both orders (1 blank per bracket)
        ledger_service.post_moves(conn, [MoveRequest(
            idempotency_key="test-steel", kind=MoveKind.RECEIPT, item="RM-STEEL", qty=Decimal(2000),
            to_location="STORES", value=Decimal("8000.00"), actor="test", reason="steel for the orders")])
    for order in ("WO-1", "WO-2"):
        release_order(engine, order, "FG-BRACKET", Decimal(1000), on=date(2026, 11, 22))
    folder = tmp_path / "plc"
    folder.mkdir()
    config = job_less_config(protocol, folder, poll_ms)
    sim: ModbusSimulator | OpcUaSimulator = (ModbusSimulator([config]) if protocol == "modbus"
                                             else OpcUaSimulator([config]))
    spool = Spool(tmp_path / "spool.db")
    services = Services(engine)
    collector = Collector([config], spool, InProcessForwarder(services), client_options=OPTIONS,
                          scans=DatabaseScanFeed(services), scan_interval_s=0.2)
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: collector.sessions[MACHINE].state is not None, what="the baseline reading")
        yield Rig(sim, collector, engine)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await sim.stop()
        spool.close()


@pytest.mark.parametrize("protocol", ["modbus", "opcua"])
async def test_counts_follow_the_scanned_work_order_exactly(
        protocol: str, sqlite_engine: Engine, example_plant: Path, tmp_path: Path) -> None:
    async with rig(protocol, sqlite_engine, example_plant, tmp_path) as r:
        # No job tag and nothing scanned yet: the counts are held, not lost.
        r.sim.start_production()
        await wait_until(lambda: "no-work-order" in r.records() and r.produced() >= 5, what="counts held")
        assert made_for(r.engine, "WO-1") == 0
        scan(r.engine, "WO-1")
        await wait_until(lambda: made_for(r.engine, "WO-1") >= 10, what="parts reaching WO-1 after its scan")
        await r.sim.stop_production()
        first = r.produced()
        await wait_until(lambda: made_for(r.engine, "WO-1") == first, what=f"{first} parts in WO-1")

        # The operator scans WO-2: what was made so far stays with WO-1, what follows goes to WO-2.
        scan(r.engine, "WO-2")
        await wait_until(lambda: r.session.scanned_work_order == "WO-2", what="the collector taking the scan")
        r.sim.start_production()
        await wait_until(lambda: made_for(r.engine, "WO-2") >= 10, what="parts reaching WO-2")
        await r.sim.stop_production()
        total = r.produced()
        await wait_until(lambda: made_for(r.engine, "WO-1") + made_for(r.engine, "WO-2") == total,
                         what=f"{total} parts in the two orders")
        records = r.records()
    assert made_for(sqlite_engine, "WO-1") == first
    assert made_for(sqlite_engine, "WO-2") == total - first >= 10
    assert records.count("work-order-scanned") == 2
    with sqlite_engine.connect() as conn:
        assert reports.list_problems(conn) == []


@pytest.mark.parametrize("protocol", ["modbus", "opcua"])
async def test_a_scan_is_read_at_once_not_at_the_next_poll(
        protocol: str, sqlite_engine: Engine, example_plant: Path, tmp_path: Path) -> None:
    # Modbus polls every 20 s here and OPC UA sends nothing while production is stopped: only the reading the
    # scan asks for can make the new order take effect within a second or two.
    async with rig(protocol, sqlite_engine, example_plant, tmp_path, poll_ms=20_000) as r:
        scan(r.engine, "WO-1")
        noticed = time.monotonic()
        await wait_until(lambda: r.session.scanned_work_order == "WO-1", timeout_s=6,
                         what="the collector taking the scan")
        # Well inside the 20 s poll: the scan made the collector read at once (a generous bound for a busy host).
        assert time.monotonic() - noticed < 10.0
