"""Modbus collector end to end against a real pymodbus server on 127.0.0.1: the parts the sink ends up
with (distinct events, summed) equal exactly the parts the simulated machine produced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from mes_bridge.collectors.core import MachineSession
from mes_bridge.collectors.runner import Collector
from mes_bridge.forwarder import Forwarder, RecordingSink
from mes_bridge.plc_config import load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator, SimulatedModbusMachine
from mes_bridge.spool import Spool

from .conftest import free_port, modbus_yaml, parts, wait_until

FAST = {"modbus": {"backoff_base_s": 0.05, "backoff_cap_s": 0.2, "timeout_s": 0.5}}


@dataclass
class Rig:
    sim: ModbusSimulator
    collector: Collector
    sink: RecordingSink
    spool: Spool
    machine: SimulatedModbusMachine

    @property
    def session(self) -> MachineSession:
        return self.collector.sessions[self.machine.name]

    def sunk(self) -> Decimal:
        return parts(self.sink.events())

    def record_kinds(self) -> list[str]:
        return [r["kind"] for r in self.collector.metrics.health()["machines"][self.machine.name]["records"]]

    async def settle(self) -> None:
        """Production stopped: wait until every part made is in the sink."""
        truth = self.machine.produced_total()
        await wait_until(lambda: self.sunk() == truth, what=f"{truth} parts in the sink (has {self.sunk()})")


@asynccontextmanager
async def rig(machine_dir: Path, tmp_path: Path, *, forwarder: Forwarder | None = None, start_counter: int = 0,
              **yaml_options: object) -> AsyncIterator[Rig]:
    port = free_port()
    (machine_dir / "m.yaml").write_text(modbus_yaml("PRESS-T", port, **yaml_options))  # type: ignore[arg-type]
    configs = load_configs(machine_dir)
    sim = ModbusSimulator([c for c in configs if c.machine == "PRESS-T"])
    for counter in configs[0].counters:
        sim.set_counter("PRESS-T", counter, start_counter)
    sink = RecordingSink()
    spool = Spool(tmp_path / "spool.db")
    collector = Collector(configs, spool, forwarder or sink, client_options=FAST)
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        session = collector.sessions["PRESS-T"]
        await wait_until(lambda: session.state is not None, what="the collector's first reading (baseline)")
        yield Rig(sim, collector, sink, spool, sim.machine("PRESS-T"))
    finally:
        stop.set()
        await task
        await sim.stop()
        spool.close()
        sink.close()
    await asyncio.sleep(0.05)  # let closed transports finish
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == [], f"tasks leaked by the collector or the server: {leftover}"


async def produce(machine: SimulatedModbusMachine, count: int, outcome: str = "good") -> None:
    for _ in range(count):
        machine.produce(outcome)
        await asyncio.sleep(0.01)


async def test_parts_survive_a_server_restart(machine_dir: Path, tmp_path: Path) -> None:
    async with rig(machine_dir, tmp_path, scrap_ratio="0.1") as r:
        r.sim.start_production()
        await wait_until(lambda: r.machine.produced_total() >= 5, timeout_s=30, what="5 parts before the restart")
        await r.sim.restart(downtime_s=0.5)
        restarted_at = r.machine.produced_total()
        await wait_until(lambda: r.machine.produced_total() >= restarted_at + 5 and r.sunk() > restarted_at,
                         timeout_s=30, what="5 parts made and read after the restart")
        await r.sim.stop_production()
        await r.settle()
        events = r.sink.events()
        assert r.machine.produced_total() >= 10
        assert sum(e.scrap for e in events) == r.machine.produced["scrap"] > 0
        assert sum((e.kwh or Decimal(0)) for e in events) == Decimal("0.25") * r.machine.produced_total()
        assert {e.work_order for e in events} == {"WO-1"} and {e.operation for e in events} == {20}
        assert "reconnect-gap" in r.record_kinds()


async def test_a_16_bit_counter_rolling_over(machine_dir: Path, tmp_path: Path) -> None:
    async with rig(machine_dir, tmp_path, bits=16, start_counter=65530) as r:
        await produce(r.machine, 40)
        await r.settle()
        ids = [e.event_id for e in r.sink.events()]
        assert r.sunk() == 40 and r.machine.counters["good"] == 34
        assert len(ids) == len(set(ids))
        assert "counter-rollover" in r.record_kinds()


async def test_a_controller_counter_reset(machine_dir: Path, tmp_path: Path) -> None:
    async with rig(machine_dir, tmp_path) as r:
        await produce(r.machine, 15)
        await r.settle()
        r.sim.reset_counters("PRESS-T")
        await wait_until(lambda: r.session.state is not None and r.session.state.counters["good"].epoch == 1,
                         what="the collector to see the drop")
        await produce(r.machine, 7)
        await r.settle()
        assert r.sunk() == 22
        assert "counter-reset" in r.record_kinds()
        assert any(e.event_id.startswith("PRESS-T:good:1:") for e in r.sink.events())


async def test_sink_unreachable_for_a_while_loses_nothing(machine_dir: Path, tmp_path: Path) -> None:
    async with rig(machine_dir, tmp_path) as r:
        r.sink.available = False
        r.sim.start_production()
        await wait_until(lambda: r.spool.depth >= 5, what="events piling up in the spool")
        await asyncio.sleep(0.3)
        assert r.sunk() == 0
        assert r.collector.metrics.health()["spool"]["oldest_age_s"] >= 0.3
        r.sink.available = True
        await asyncio.sleep(0.3)
        await r.sim.stop_production()
        await r.settle()
        await wait_until(lambda: r.spool.depth == 0, what="the spool to drain")
        assert r.collector.metrics.forward_errors > 0


class LosesAcks:
    """Delivers to the sink, then loses the answer (as a link dropping after the service committed)."""

    def __init__(self, sink: RecordingSink, lose: int) -> None:
        self.sink = sink
        self.lose = lose

    async def forward(self, events):  # type: ignore[no-untyped-def]
        outcomes = await self.sink.forward(events)
        if self.lose > 0:
            self.lose -= 1
            raise ConnectionError("answer lost")
        return outcomes


async def test_the_same_events_forwarded_twice_count_once(machine_dir: Path, tmp_path: Path) -> None:
    sink = RecordingSink()
    async with rig(machine_dir, tmp_path, forwarder=LosesAcks(sink, lose=3)) as r:
        r.sink = sink
        await produce(r.machine, 30)
        await r.settle()
        await wait_until(lambda: r.spool.depth == 0, what="the spool to drain")
        assert sink.received_count() > len(sink.events())  # some were delivered more than once
        assert r.collector.metrics.outcomes.get("duplicate", 0) > 0
        again = await sink.forward(sink.events())
        assert {o.status.value for o in again} == {"duplicate"}
        assert r.sunk() == 30


async def test_job_change_splits_counts_between_orders(machine_dir: Path, tmp_path: Path) -> None:
    async with rig(machine_dir, tmp_path) as r:
        await produce(r.machine, 10)
        await r.settle()
        r.sim.set_job("PRESS-T", "WO-2")
        await wait_until(lambda: r.session.state is not None and r.session.state.job == "WO-2",
                         what="the collector to see the new job")
        await produce(r.machine, 4)
        await r.settle()
        by_order: dict[str | None, Decimal] = {}
        for e in r.sink.events():
            by_order[e.work_order] = by_order.get(e.work_order, Decimal(0)) + e.processed
        assert by_order == {"WO-1": 10, "WO-2": 4}


async def test_dead_device_does_not_stall_another_machine(machine_dir: Path, tmp_path: Path) -> None:
    dead_port = free_port()  # nobody listens here
    (machine_dir / "dead.yaml").write_text(modbus_yaml("DEAD-1", dead_port))
    async with rig(machine_dir, tmp_path) as r:
        await produce(r.machine, 12)
        await r.settle()
        health = r.collector.metrics.health()["machines"]
        assert health["DEAD-1"]["connected"] is False and health["PRESS-T"]["connected"] is True


async def test_two_units_on_one_endpoint_and_a_vision_station(machine_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    (machine_dir / "press.yaml").write_text(modbus_yaml("PRESS-U1", port))
    (machine_dir / "vision.yaml").write_text(
        "machine: VISION-U2\nwork_center: WC-ASSY\nkind: vision\nprotocol: modbus\n"
        f"endpoint: tcp://127.0.0.1:{port}\ndevice_id: 2\npoll_interval_ms: 50\n"
        "counters:\n  pass: {register: {address: 0}}\n  fail: {register: {address: 1}}\n"
        "inspection: {operation: 30, fail_as: rework}\nwork_order: WO-7\n"
    )
    configs = load_configs(machine_dir)
    sim = ModbusSimulator(configs)
    spool, sink = Spool(tmp_path / "spool.db"), RecordingSink()
    collector = Collector(configs, spool, sink, client_options=FAST)
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: all(s.state is not None for s in collector.sessions.values()), what="baselines")
        press, vision = sim.machine("PRESS-U1"), sim.machine("VISION-U2")
        await produce(press, 5)
        await produce(vision, 4, "good")
        await produce(vision, 2, "scrap")  # a failed inspection
        await wait_until(lambda: parts(sink.events()) == 11, what="11 parts in the sink")
        events = sink.events()
    finally:
        stop.set()
        await task
        await sim.stop()
        spool.close()
        sink.close()
    totals: dict[tuple[str | None, int | None], tuple[Decimal, Decimal, Decimal]] = {}
    for e in events:
        g, s, w = totals.get((e.machine, e.operation), (Decimal(0),) * 3)
        totals[(e.machine, e.operation)] = (g + e.good, s + e.scrap, w + e.rework)
    assert totals == {("PRESS-U1", 20): (5, 0, 0), ("VISION-U2", 30): (4, 0, 2)}
    assert {e.work_order for e in events if e.machine == "VISION-U2"} == {"WO-7"}


async def test_unreadable_register_is_none_and_the_rest_still_counts(machine_dir: Path, tmp_path: Path) -> None:
    """The device refuses a span read (an address past its memory): tags are then read one by one."""
    port = free_port()
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    (sim_dir / "m.yaml").write_text(modbus_yaml("PRESS-R", port))
    (machine_dir / "m.yaml").write_text(
        f"machine: PRESS-R\nwork_center: WC-PRESS\nprotocol: modbus\nendpoint: tcp://127.0.0.1:{port}\n"
        "poll_interval_ms: 50\noperation: 20\nwork_order: WO-5\ncounters:\n"
        "  good: {register: {address: 0, type: uint32, word_order: little}}\n"
        "  scrap: {register: {address: 15, type: uint32}}\n"  # 16 is past the device's registers
        "job: {register: {address: 10}}\n"
    )
    sim = ModbusSimulator(load_configs(sim_dir))
    configs = load_configs(machine_dir)
    spool, sink = Spool(tmp_path / "spool.db"), RecordingSink()
    collector = Collector(configs, spool, sink, client_options=FAST)
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: collector.sessions["PRESS-R"].state is not None, what="baseline")
        await produce(sim.machine("PRESS-R"), 6)
        await wait_until(lambda: parts(sink.events()) == 6, what="6 parts")
        kinds = [r["kind"] for r in collector.metrics.health()["machines"]["PRESS-R"]["records"]]
        assert kinds.count("register-unreadable") == 1
        assert {e.work_order for e in sink.events()} == {"WO-5"}
    finally:
        stop.set()
        await task
        await sim.stop()
        spool.close()
        sink.close()
