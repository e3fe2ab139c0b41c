"""OPC UA collector against the real asyncua simulator on 127.0.0.1: parts collected == parts produced.

Most tests share one simulated plant (several machines behind one server, which announces small operation limits
so every test also exercises the client's chunking); each test owns its machine. Production is driven explicitly,
after the collector holds its baseline (parts made before a collector first saw a machine are not its to count),
and the comparison waits until the collector has caught up.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Node, ua
from asyncua.common.subscription import DataChangeEvent, DataChangeNotif, SubscriptionItemData

from mes_bridge.collectors.core import Snapshot
from mes_bridge.collectors.opcua import Backoff, OpcUaClient
from mes_bridge.collectors.opcua_setup import tag_value
from mes_bridge.plc_config import MachineConfig
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from tests.integration.collectors.opcua_helpers import (
    RunningCollector,
    by_work_order,
    free_port,
    machine_config,
    wait_until,
)

pytestmark = pytest.mark.integration
in_plant = pytest.mark.asyncio(loop_scope="module")  # tests sharing the module's simulated plant


class Plant:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.configs: dict[str, MachineConfig] = {
            "CNC-W": machine_config(folder, "CNC-W", port, bits=16, counter_start=65_530, counters=("good",)),
            "CNC-Z": machine_config(folder, "CNC-Z", port, counter_start=500),
            "CNC-C": machine_config(folder, "CNC-C", port, publishing_interval_ms=300, counters=("good",)),
            "CNC-J": machine_config(folder, "CNC-J", port),
            "CNC-L": machine_config(folder, "CNC-L", port, counters=("good", "scrap", "rework")),
            "CNC-A": machine_config(folder, "CNC-A", port, counters=("good", "scrap")),
        }
        self.sim = OpcUaSimulator(list(self.configs.values()), max_nodes_per_read=2, max_monitored_items_per_call=2)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plant(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Plant]:
    plant = Plant(tmp_path_factory.mktemp("plant"), free_port())
    await plant.sim.start(produce=False)
    yield plant
    await plant.sim.stop()


async def settle(sim: OpcUaSimulator, collector: RunningCollector, machine: str, timeout: float = 10.0) -> None:
    """Stop production and wait until the collector has caught up with the machine's counters."""
    sim.pause(machine)
    await wait_until(
        lambda: collector.totals() == sim.produced(machine),
        timeout,
        f"collected {collector.totals()} == produced {sim.produced(machine)}",
    )


def test_backoff_is_capped_exponential_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(10)]
    ceilings = [min(8.0, 0.5 * 2**n) for n in range(10)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 8.0
    assert len({round(d, 6) for d in delays[5:]}) > 1  # jittered, not all equal at the cap


def test_tag_values_are_exact() -> None:
    assert tag_value("energy", 0.1 + 0.2) == Decimal("0.30000000000000004")
    assert tag_value("energy", 12.5) == Decimal("12.5")
    assert tag_value("job", "  WO-7 ") == "WO-7"
    assert tag_value("job", "") is None
    assert tag_value("good", 65535) == 65535
    with pytest.raises(ValueError, match="not an unsigned integer"):
        tag_value("good", 1.5)


async def test_parts_survive_server_restart(tmp_path: Path) -> None:
    config = machine_config(tmp_path, "CNC-R", free_port(), parts_per_minute=1200)
    sim = OpcUaSimulator([config])
    await sim.start(produce=False)
    try:
        async with RunningCollector(config) as collector:
            await collector.baseline()
            sim.start_production()
            await wait_until(lambda: collector.totals()["good"] >= 5, what="first parts")
            await sim.restart(downtime=0.5)  # the machine keeps producing while its server is down
            await wait_until(lambda: collector.client.connects >= 2, what="reconnect")
            await wait_until(
                lambda: sum(collector.totals().values()) > sum(sim.produced("CNC-R").values()) - 10,
                what="collection resumed",
            )
            await settle(sim, collector, "CNC-R")
            produced = sim.produced("CNC-R")
            assert collector.totals() == produced
            assert produced["good"] > 20 and produced["scrap"] > 5
            assert "reconnect-gap" in collector.session.kinds()
            await wait_until(lambda: "subscription-transfer-failed" in collector.session.kinds(), what="record")
            # energy follows the parts exactly: 0.25 kWh per part
            kwh = sum((e.kwh or Decimal(0)) for e in collector.store.events.values())
            assert kwh == Decimal("0.25") * sum(produced.values())
    finally:
        await sim.stop()


@in_plant
async def test_16_bit_counter_rolls_over(plant: Plant) -> None:
    config, sim = plant.configs["CNC-W"], plant.sim
    async with RunningCollector(config) as collector:
        await collector.baseline()
        for _ in range(20):
            await sim.produce("CNC-W", "good")
        await settle(sim, collector, "CNC-W")
        assert sim.machine("CNC-W").counters["good"] == 14  # 65530 + 20 wrapped at 2**16
        assert collector.totals() == {"good": 20}
        assert "counter-rollover" in collector.session.kinds()
        assert "counter-reset" not in collector.session.kinds()


@in_plant
async def test_controller_counter_reset(plant: Plant) -> None:
    config, sim = plant.configs["CNC-Z"], plant.sim
    async with RunningCollector(config) as collector:
        await collector.baseline()
        for outcome in ["good"] * 6 + ["scrap"] * 2:
            await sim.produce("CNC-Z", outcome)
        await settle(sim, collector, "CNC-Z")
        await sim.reset_counters("CNC-Z")  # controller reboot: counters back to 0
        for outcome in ["good"] * 7 + ["scrap"]:
            await sim.produce("CNC-Z", outcome)
        await settle(sim, collector, "CNC-Z")
        assert collector.totals() == {"good": 13, "scrap": 3}
        assert collector.session.kinds().count("counter-reset") == 2  # good and scrap
        ids = sorted(e.event_id for e in collector.store.events.values() if e.event_id.startswith("CNC-Z:good:1:"))
        assert ids and ids[-1] == "CNC-Z:good:1:7"  # new epoch, counted from 0


@in_plant
async def test_events_come_from_counter_values_not_notifications(plant: Plant) -> None:
    config, sim = plant.configs["CNC-C"], plant.sim
    async with RunningCollector(config) as collector:
        await collector.baseline()
        before = len(collector.session.snapshots)
        # 28 parts in 9 counter writes (20 at once, then 8 one by one): at most 9 data changes can be notified,
        # however fast or slow this host is, and all 28 parts must be counted from the values.
        await sim.produce("CNC-C", "good", parts=20)
        for _ in range(8):
            await sim.produce("CNC-C", "good")
        await settle(sim, collector, "CNC-C")
        changes = len(collector.session.snapshots) - before
        assert collector.totals() == {"good": 28}
        assert 1 <= changes <= 9  # fewer notifications than parts, yet every part counted


@in_plant
async def test_job_change_attributes_counts_to_each_job(plant: Plant) -> None:
    config, sim = plant.configs["CNC-J"], plant.sim
    async with RunningCollector(config) as collector:
        await collector.baseline()
        for outcome in ["good"] * 5 + ["scrap"]:
            await sim.produce("CNC-J", outcome)
        # A changeover: the new job is loaded before its first part (counts read at the change close WO-1).
        await sim.set_job("CNC-J", "WO-2")
        await wait_until(
            lambda: any(s.reason == "job-change" for s in collector.session.snapshots), what="job-change snapshot"
        )
        for _ in range(4):
            await sim.produce("CNC-J", "good")
        await settle(sim, collector, "CNC-J")
        events = list(collector.store.events.values())
        assert by_work_order(events) == {"WO-1": Decimal(6), "WO-2": Decimal(4)}


@in_plant
async def test_reads_and_registrations_split_by_server_limits(plant: Plant) -> None:
    config, sim = plant.configs["CNC-L"], plant.sim
    async with RunningCollector(config) as collector:
        await collector.baseline()
        for outcome in ("good", "scrap", "rework", "good"):
            await sim.produce("CNC-L", outcome)
        await settle(sim, collector, "CNC-L")
        assert collector.totals() == {"good": 2, "scrap": 1, "rework": 1}
        # 5 tags (3 counters, job, energy): never more than 2 per request
        assert sim.largest_read == 2
        assert sim.largest_monitored_items_call == 2


@in_plant
async def test_vanished_node_and_dead_server_do_not_stall_other_machines(plant: Plant, tmp_path: Path) -> None:
    sim = plant.sim
    # The collector expects a rework counter the controller does not have (a vanished node) ...
    expected = machine_config(tmp_path, "CNC-A", plant.port, counters=("good", "scrap", "rework"))
    # ... and a second machine whose server is not there at all.
    dead = machine_config(tmp_path, "CNC-DEAD", free_port())
    async with RunningCollector(dead) as dead_collector, RunningCollector(expected) as collector:
        await collector.baseline()
        for outcome in ("good", "good", "scrap"):
            await sim.produce("CNC-A", outcome)
        await wait_until(lambda: collector.totals() == {"good": 2, "scrap": 1, "rework": 0}, what="CNC-A parts")
        assert any(kind == "node-unusable" and "rework" in detail for kind, detail in collector.session.records)
        assert dead_collector.client.connects == 0 and not dead_collector.session.connected


def test_client_refuses_non_opcua_config(tmp_path: Path) -> None:
    config = machine_config(tmp_path, "CNC-M", free_port())
    modbus = config.model_copy(update={"protocol": "modbus"})
    with pytest.raises(Exception, match="is not opcua"):
        OpcUaClient(modbus)


def _notification(config: MachineConfig, tag: str, value: int, stamp: datetime) -> DataChangeEvent:
    node_id = ua.NodeId.from_string(config.counters[tag].node or "")
    item = ua.MonitoredItemNotification()
    item.Value = ua.DataValue(
        ua.Variant(value, ua.VariantType.UInt32), SourceTimestamp=ua.DateTime.fromtimestamp(stamp.timestamp(), UTC)
    )
    return DataChangeEvent(Node(None, node_id), value, DataChangeNotif(SubscriptionItemData(), item))  # type: ignore[arg-type]


async def test_notification_older_than_the_last_read_is_not_a_counter_drop(tmp_path: Path) -> None:
    """A notification published before a full read but handled after it carries an older, lower value."""
    config = machine_config(tmp_path, "CNC-O", free_port(), counters=("good",))
    collector = RunningCollector(config)
    client, session = collector.client, collector.session
    read_at = datetime.now(UTC)
    await session.on_snapshot(Snapshot("CNC-O", {"good": 100, "job": "WO-1"}, read_at, "connect"))
    client.bind([session])
    client.machines[0].stamps["good"] = read_at  # what the full read saw
    await client._handle(None, [_notification(config, "good", 97, read_at - timedelta(milliseconds=80))], 10)  # type: ignore[arg-type]
    await client._handle(None, [_notification(config, "good", 103, read_at + timedelta(milliseconds=80))], 10)  # type: ignore[arg-type]
    assert "counter-reset" not in session.kinds()
    assert collector.totals() == {"good": 3}
    assert sorted(collector.store.events) == ["CNC-O:good:0:103"]
