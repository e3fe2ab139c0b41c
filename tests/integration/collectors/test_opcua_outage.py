"""OPC UA collector through the spool and the forward loop (the runner's ``Collector``), against the asyncua
simulator on 127.0.0.1: the forwarding target unreachable for a while, and the same events forwarded twice.
In both, the parts the sink ends up with (distinct events, summed per counter) equal exactly the parts the
simulated machine produced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from mes_bridge.collectors.core import MachineSession
from mes_bridge.collectors.runner import Collector
from mes_bridge.forwarder import Forwarder, RecordingSink
from mes_bridge.plc_config import MachineConfig
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from mes_bridge.spool import Spool
from tests.integration.collectors.opcua_helpers import FAST_BACKOFF, collected, free_port, machine_config, wait_until
from wip_costing.events import EventOutcome, OperationEvent

pytestmark = pytest.mark.integration

MACHINE = "CNC-O"
FAST = {"opcua": {"backoff": FAST_BACKOFF, "watchdog_interval": 0.5}}


@dataclass
class Rig:
    sim: OpcUaSimulator
    config: MachineConfig
    collector: Collector
    spool: Spool
    sink: RecordingSink

    @property
    def session(self) -> MachineSession:
        return self.collector.sessions[MACHINE]

    def produced(self) -> dict[str, int]:
        return self.sim.produced(MACHINE)

    def sunk(self) -> dict[str, int]:
        return collected(self.sink.events(), self.config)

    def record_kinds(self) -> list[str]:
        return [r["kind"] for r in self.collector.metrics.health()["machines"][MACHINE]["records"]]

    async def settle(self, timeout: float = 12.0) -> None:
        """Production stopped: wait until every part made is in the sink and the spool is empty."""
        await self.sim.stop_production()
        await wait_until(lambda: self.sunk() == self.produced(), timeout,
                         f"sink {self.sunk()} == produced {self.produced()}")
        await wait_until(lambda: self.spool.depth == 0, timeout, "the spool to drain")


@asynccontextmanager
async def rig(tmp_path: Path, sink: RecordingSink, forwarder: Forwarder | None = None) -> AsyncIterator[Rig]:
    config = machine_config(tmp_path / "plc", MACHINE, free_port(), parts_per_minute=1200, scrap_ratio="0.2",
                            publishing_interval_ms=50)
    sim = OpcUaSimulator([config])
    spool = Spool(tmp_path / "spool.db")
    collector = Collector([config], spool, forwarder or sink, client_options=FAST)
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: collector.sessions[MACHINE].state is not None, what="the baseline reading")
        yield Rig(sim, config, collector, spool, sink)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await sim.stop()
        spool.close()
        sink.close()
    await asyncio.sleep(0.1)  # let closed transports finish
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == [], f"tasks leaked by the collector or the server: {leftover}"


async def test_sink_unreachable_for_a_while_then_back_loses_nothing(tmp_path: Path) -> None:
    async with rig(tmp_path, RecordingSink()) as r:
        r.sim.start_production()
        await wait_until(lambda: sum(r.sunk().values()) >= 5, what="first parts in the sink")
        r.sink.available = False  # the central service goes away while the machine keeps producing
        errors_before = r.collector.metrics.forward_errors
        at_cut = r.sunk()
        await wait_until(lambda: r.spool.depth >= 10, what="events piling up in the spool")
        await asyncio.sleep(1.0)
        held = r.spool.depth
        assert r.sunk() == at_cut  # nothing got through the outage
        assert r.collector.metrics.forward_errors > errors_before
        assert r.collector.metrics.health()["spool"]["oldest_age_s"] >= 1.0
        r.sink.available = True
        await wait_until(lambda: r.spool.depth < held, what="the spool draining after the outage")
        await wait_until(lambda: sum(r.produced().values()) >= 50, timeout=30,
                         what=f"50 parts made in all, some after the outage (made {r.produced()})")
        await r.settle()
        produced = r.produced()
        assert r.sunk() == produced
        assert produced["good"] >= 30 and produced["scrap"] >= 8  # 50 parts waited for, one in five scrap
        kwh = sum((e.kwh or Decimal(0)) for e in r.sink.events())
        assert kwh == Decimal("0.25") * sum(produced.values())
        assert set(r.collector.metrics.outcomes) == {"applied"}
        assert r.sink.received_count() == len(r.sink.events())  # nothing acknowledged was sent again


class LosesAcks:
    """Delivers to the sink, then loses the answer (the link drops after the service committed)."""

    def __init__(self, sink: RecordingSink, lose: int) -> None:
        self.sink = sink
        self.lose = lose
        self.lost = 0

    async def forward(self, events: Sequence[OperationEvent]) -> Sequence[EventOutcome]:
        outcomes = await self.sink.forward(events)
        if self.lost < self.lose:
            self.lost += 1
            raise ConnectionError("answer lost")
        return outcomes


async def test_the_same_events_forwarded_twice_count_once(tmp_path: Path) -> None:
    sink = RecordingSink()
    forwarder = LosesAcks(sink, lose=3)
    async with rig(tmp_path, sink, forwarder) as r:
        for outcome in ["good"] * 12 + ["scrap"] * 3 + ["good"] * 10:
            await r.sim.produce(MACHINE, outcome)
            await asyncio.sleep(0.02)
        await r.settle()
        assert forwarder.lost == 3
        assert r.sunk() == r.produced() == {"good": 22, "scrap": 3}
        assert sink.received_count() > len(sink.events())  # some events were delivered more than once
        assert r.collector.metrics.outcomes.get("duplicate", 0) > 0
        assert "conflict" not in r.collector.metrics.outcomes
        # The whole history forwarded once more (a restored spool backup, a replay): all duplicates.
        again = await sink.forward(sink.events())
        assert {o.status.value for o in again} == {"duplicate"}
        assert r.sunk() == {"good": 22, "scrap": 3}
