"""From a simulated machine's counters to the ledger, for each protocol, through real failures.

A laser (WC-LASER, operation 10 of FG-BRACKET in SPEC's example plant) works on a released order of 1,000
brackets. Its collector forwards with the real ``InProcessForwarder`` into real PostgreSQL, reached through a
TCP proxy on 127.0.0.1 that is cut for a few seconds mid-run (new connections refused, open ones dropped, so
the database is really unreachable), and the machine's server restarts once mid-run. At the end the order's
operation 10 completed exactly the parts the machine made (good and scrap), exactly that much steel left
stores (1 per unit), and the service recorded no rejected or conflicting event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from ledger import queries as ledger_queries
from ledger import service as ledger_service
from ledger.model import MoveKind, MoveRequest
from mes_bridge.bootstrap import Services
from mes_bridge.collectors.opcua import Backoff
from mes_bridge.collectors.runner import Collector
from mes_bridge.forwarder import Forwarder, InProcessForwarder
from mes_bridge.plc_config import MachineConfig, load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from mes_bridge.spool import Spool
from mes_common.db import make_engine
from tests.integration.collectors.conftest import free_port, modbus_yaml, wait_until
from tests.integration.collectors.opcua_helpers import machine_config
from tests.integration.collectors.proxy import TcpProxy
from tests.integration.wip_costing.plant import load_plant
from wip_costing import reports
from wip_costing.service import release_order

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

MACHINE = "LASER-1"
ORDER = "WO-1"
ORDER_QTY = Decimal(1000)
OUTAGE_S = 2.5  # float-ok: seconds the database is unreachable
CLIENT_OPTIONS: dict[str, dict[str, Any]] = {
    "modbus": {"backoff_base_s": 0.05, "backoff_cap_s": 0.3, "timeout_s": 0.5},
    "opcua": {"backoff": Backoff(initial=0.1, maximum=0.5), "watchdog_interval": 0.5},
}


class Machine:
    """The simulated laser behind one protocol: production, a server restart, and the exact parts made."""

    def __init__(self, protocol: str, folder: Path, *, bits: int = 32, counter_start: int = 0,
                 scrap_ratio: str = "0.1") -> None:
        self.protocol = protocol
        port = free_port()
        self.sim: ModbusSimulator | OpcUaSimulator
        if protocol == "modbus":
            (folder / "laser.yaml").write_text(modbus_yaml(MACHINE, port, bits=bits, rate=600, scrap_ratio=scrap_ratio,
                                                           operation=10, work_center="WC-LASER"))
            self.config: MachineConfig = load_configs(folder)[0]
            self.sim = ModbusSimulator([self.config])
            for counter in self.config.counters:
                self.sim.set_counter(MACHINE, counter, counter_start)
        else:
            self.config = machine_config(folder, MACHINE, port, bits=bits, counter_start=counter_start,
                                         parts_per_minute=600, scrap_ratio=scrap_ratio, publishing_interval_ms=50)
            self.sim = OpcUaSimulator([self.config])

    async def restart_server(self) -> None:
        if isinstance(self.sim, ModbusSimulator):
            await self.sim.restart(downtime_s=0.5)
        else:
            await self.sim.restart(downtime=0.5)

    def produced(self) -> dict[str, int]:
        if isinstance(self.sim, ModbusSimulator):
            return dict(self.sim.machine(MACHINE).produced)
        return self.sim.produced(MACHINE)

    def counters(self) -> dict[str, int]:
        """The raw counter values the controller shows now (they wrap, and drop on a reset)."""
        return dict(self.sim.machine(MACHINE).counters)

    async def reset_counters(self) -> None:
        """A controller reboot: every counter back to 0 (the parts made stay made)."""
        if isinstance(self.sim, ModbusSimulator):
            self.sim.reset_counters(MACHINE)
        else:
            await self.sim.reset_counters(MACHINE)


def operation_10(engine: Engine) -> tuple[Decimal, Decimal]:
    """Completed good and scrapped units of the order's operation 10, as the service recorded them."""
    with engine.connect() as conn:
        view = reports.order_view(conn, ORDER)
    assert view is not None
    op = next(o for o in view["operations"] if o["operation"] == 10)
    return Decimal(op["completed_good"]), Decimal(op["scrapped"])


def steel_issued(engine: Engine) -> Decimal:
    with engine.connect() as conn:
        moves = ledger_queries.list_moves(conn, item="RM-STEEL", reference=ORDER)
    assert all(m.kind is MoveKind.ISSUE and m.from_location == "STORES" for m in moves)
    return sum((m.qty for m in moves), Decimal(0))


def prepare_plant(engine: Engine, example_plant: Path) -> None:
    load_plant(engine, example_plant)
    with engine.begin() as conn:  # the example has 100 blanks in stores: enough for the whole order
        ledger_service.post_moves(conn, [MoveRequest(
            idempotency_key="test-receipt-steel", kind=MoveKind.RECEIPT, item="RM-STEEL", qty=Decimal(1000),
            to_location="STORES", value=Decimal("4000.00"), actor="test", reason="steel for the order")])
    release_order(engine, ORDER, "FG-BRACKET", ORDER_QTY, on=date(2026, 11, 22))


@dataclass
class Line:
    machine: Machine
    collector: Collector
    spool: Spool
    proxy: TcpProxy
    engine: Engine  # what the test reads with (direct, not through the proxy)

    def in_ledger(self) -> Decimal:
        good, scrap = operation_10(self.engine)
        return good + scrap


@asynccontextmanager
async def line(protocol: str, engine: Engine, tmp_path: Path, *,
               wrap: Callable[[Forwarder], Forwarder] | None = None, **machine_options: Any) -> AsyncIterator[Line]:
    """The machine and its collector, forwarding through the proxy (and ``wrap``, if given) into ``engine``."""
    folder = tmp_path / "plc"
    folder.mkdir()
    machine = Machine(protocol, folder, **machine_options)
    target = engine.url
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432, free_port())
    await proxy.start()
    # The forwarder reaches the database only through the proxy.
    proxied = make_engine(target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    spool = Spool(tmp_path / "spool.db")
    forwarder: Forwarder = InProcessForwarder(Services(proxied))
    if wrap is not None:
        forwarder = wrap(forwarder)
    collector = Collector([machine.config], spool, forwarder, client_options=CLIENT_OPTIONS)
    await machine.sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: collector.sessions[MACHINE].state is not None, what="the baseline reading")
        yield Line(machine, collector, spool, proxy, engine)
    finally:
        stop.set()
        await proxy.restore()  # so the forwarder's last drain attempt is not stuck behind a cut link
        await asyncio.wait_for(task, 15)
        await machine.sim.stop()
        await proxy.aclose()
        proxied.dispose()
        spool.close()
    await asyncio.sleep(0.1)  # let closed transports finish
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == [], f"tasks leaked: {leftover}"


@pytest.mark.parametrize("protocol", ["modbus", "opcua"])
async def test_parts_reach_the_ledger_exactly_through_a_database_outage_and_a_server_restart(
        protocol: str, pg_engine: Engine, example_plant: Path, tmp_path: Path) -> None:
    prepare_plant(pg_engine, example_plant)
    async with line(protocol, pg_engine, tmp_path) as ln:
        ln.machine.sim.start_production()
        await wait_until(lambda: ln.in_ledger() >= 5, what="first parts in the ledger")

        await ln.proxy.cut()  # the database becomes unreachable
        cut_at = time.monotonic()
        errors_before = ln.collector.metrics.forward_errors
        at_cut = ln.in_ledger()
        await ln.machine.restart_server()  # and, during the outage, the machine's server restarts
        await wait_until(lambda: ln.collector.metrics.forward_errors > errors_before and ln.spool.depth >= 5,
                         what="forwarding failing and events spooled")
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
        assert ln.in_ledger() == at_cut  # nothing got through while cut
        assert ln.proxy.accepted > 0 and ln.proxy.aborted > 0  # it went through the proxy, and links were dropped
        await ln.proxy.restore()

        await wait_until(lambda: ln.in_ledger() > at_cut, timeout_s=10, what="forwarding resuming after the outage")
        made_at_restore = sum(ln.machine.produced().values())
        await wait_until(lambda: sum(ln.machine.produced().values()) >= max(made_at_restore + 3, 34), timeout_s=60,
                         what=f"34 parts made in all, 3 after the outage (made {ln.machine.produced()})")
        await ln.machine.sim.stop_production()
        produced = ln.machine.produced()
        total = sum(produced.values())
        await wait_until(lambda: ln.in_ledger() == total, timeout_s=10,
                         what=f"{total} parts in the ledger (has {ln.in_ledger()})")
        await wait_until(lambda: ln.spool.depth == 0, what="the spool to drain")
        records = [r["kind"] for r in ln.collector.metrics.health()["machines"][MACHINE]["records"]]
        outcomes = dict(ln.collector.metrics.outcomes)

    assert operation_10(pg_engine) == (Decimal(produced["good"]), Decimal(produced["scrap"]))
    assert produced["good"] >= 30 and produced["scrap"] >= 3  # 34 parts waited for, one in ten scrap
    assert total < ORDER_QTY
    assert steel_issued(pg_engine) == total * Decimal(1)  # qty per bracket: 1 blank, no scrap allowance
    with pg_engine.connect() as conn:
        assert reports.list_problems(conn) == []
        view = reports.order_view(conn, ORDER)
    assert view is not None
    op20 = next(o for o in view["operations"] if o["operation"] == 20)
    assert Decimal(op20["waiting"]) == produced["good"]  # the good ones wait at the next operation
    assert set(outcomes) <= {"applied", "duplicate"} and outcomes["applied"] > 0
    assert "reconnect-gap" in records
