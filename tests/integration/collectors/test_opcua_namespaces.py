"""Node ids in the namespace-URI form (``nsu=``) against a real asyncua server whose namespace indexes move.

A vendor's server may register its namespaces in another order after a restart, so ``ns=3`` today is ``ns=5``
tomorrow; the URI form is what OPC UA recommends. The collector resolves the URIs on every connect, and a node
that does not exist (or whose namespace the server does not have) is named in the machine's health while the
machine's other counters keep counting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mes_bridge.metrics import CollectorMetrics
from mes_bridge.plc_config import MachineConfig
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from tests.integration.collectors.opcua_helpers import RunningCollector, free_port, machine_config, wait_until

pytestmark = pytest.mark.integration

VENDOR = "urn:vendor:machine"


def _nodes(machine: str, counters: dict[str, str], namespace: str = VENDOR) -> dict[str, Any]:
    return {
        "counters": {name: {"node": f"nsu={namespace};s={node}", "bits": 32} for name, node in counters.items()},
        "job": {"node": f"nsu={namespace};s={machine}.ProductionJob"},
        "energy": {"node": f"nsu={namespace};s={machine}.EnergyKwh"},
    }


def _vendor_machine(folder: Path, machine: str, port: int, **extra: Any) -> MachineConfig:
    counters = {"good": f"{machine}.PartsGood", "scrap": f"{machine}.PartsScrap"}
    return machine_config(folder, machine, port, extra={**_nodes(machine, counters), **extra})


async def test_nsu_node_ids_follow_a_namespace_index_that_moves_on_restart(tmp_path: Path) -> None:
    config = _vendor_machine(tmp_path / "plc", "CNC-N", free_port())
    sim = OpcUaSimulator([config])
    await sim.start(produce=False)
    try:
        async with RunningCollector(config) as collector:
            await collector.baseline()
            first_index = sim._nodes[("CNC-N", "good")].NamespaceIndex
            for outcome in ["good"] * 4 + ["scrap"]:
                await sim.produce("CNC-N", outcome)
            await wait_until(lambda: collector.totals() == {"good": 4, "scrap": 1}, what="parts before the restart")

            # The vendor's server comes back with two namespaces registered ahead of the machine's.
            sim.leading_namespaces = ["urn:vendor:diagnostics", "urn:vendor:alarms"]
            await sim.restart(downtime=0.3)
            moved_index = sim._nodes[("CNC-N", "good")].NamespaceIndex
            assert moved_index == first_index + 2
            await wait_until(lambda: collector.client.connects >= 2, what="reconnect")
            for outcome in ["good"] * 6 + ["scrap"] * 2:
                await sim.produce("CNC-N", outcome)
            await wait_until(lambda: collector.totals() == {"good": 10, "scrap": 3},
                             what=f"parts after the restart: {collector.totals()} == 10 good, 3 scrap")
            assert {tag.node_id.NamespaceIndex for tag in collector.client.tags} == {moved_index}
            assert collector.session.error is None
            assert not [d for k, d in collector.session.records if k == "node-unusable"]
    finally:
        await sim.stop()


async def test_a_missing_node_is_named_and_the_other_counters_keep_counting(tmp_path: Path) -> None:
    port = free_port()
    served = _vendor_machine(tmp_path / "server", "CNC-M", port)
    # The collector's file names a scrap counter the controller does not have and a rework counter in a
    # namespace the server does not know at all.
    wanted = machine_config(tmp_path / "plc", "CNC-M", port, counters=("good", "scrap", "rework"), extra={
        **_nodes("CNC-M", {"good": "CNC-M.PartsGood", "scrap": "CNC-M.NoSuchCounter"}),
    })
    absent = "nsu=urn:vendor:absent;s=CNC-M.PartsRework"
    counters = {**wanted.counters, "rework": wanted.counters["good"].model_copy(update={"node": absent})}
    wanted = wanted.model_copy(update={"counters": counters})
    sim = OpcUaSimulator([served])
    metrics = CollectorMetrics()
    await sim.start(produce=False)
    try:
        async with RunningCollector(wanted) as collector:
            collector.session.observer = metrics
            await collector.baseline()
            for outcome in ["good"] * 5 + ["scrap"] * 2:
                await sim.produce("CNC-M", outcome)
            await wait_until(lambda: collector.totals()["good"] == 5, what="good parts counted")

            error = metrics.health()["machines"]["CNC-M"]["error"]
            assert error is not None
            assert f"scrap node nsu={VENDOR};s=CNC-M.NoSuchCounter: " in error and "BadNodeIdUnknown" in error
            assert f"rework node {absent}: namespace 'urn:vendor:absent' is not on the server" in error
            details = [d for k, d in collector.session.records if k == "node-unusable"]
            assert len(details) == 2 and any("NoSuchCounter" in d for d in details)
            # the readable counter kept counting, the unusable ones stayed silent (never guessed)
            assert collector.totals() == {"good": 5, "scrap": 0, "rework": 0}
            assert collector.session.connected
    finally:
        await sim.stop()


def _by_path(machine: str, counters: dict[str, str]) -> dict[str, Any]:
    """Tags addressed as a companion specification does: browse names under Objects/Machines/<machine>/Monitoring."""
    def path(name: str) -> dict[str, Any]:
        return {"path": ["Machines", machine, "Monitoring", name], "namespace": VENDOR}

    return {
        "counters": {tag: {**path(name), "bits": 32} for tag, name in counters.items()},
        "job": path("ProductionJob"),
        "energy": path("EnergyKwh"),
    }


async def test_browse_paths_are_translated_on_every_connect_and_a_missing_one_is_named(tmp_path: Path) -> None:
    port = free_port()
    served = machine_config(tmp_path / "server", "CNC-P", port, counters=("good", "scrap"),
                            extra=_by_path("CNC-P", {"good": "PartsGood", "scrap": "PartsScrap"}))
    wanted = machine_config(tmp_path / "plc", "CNC-P", port, counters=("good", "scrap", "rework"),
                            extra=_by_path("CNC-P", {"good": "PartsGood", "scrap": "PartsScrap", "rework": "Reworked"}))
    sim = OpcUaSimulator([served])
    await sim.start(produce=False)
    try:
        async with RunningCollector(wanted) as collector:
            await collector.baseline()
            for outcome in ["good"] * 3 + ["scrap"]:
                await sim.produce("CNC-P", outcome)
            await wait_until(lambda: collector.totals() == {"good": 3, "scrap": 1, "rework": 0}, what="parts by path")
            assert "rework node path Machines/CNC-P/Monitoring/Reworked" in (collector.session.error or "")
            assert "browse path not found" in (collector.session.error or "")

            sim.leading_namespaces = ["urn:vendor:diagnostics"]  # the vendor namespace moves by one on restart
            await sim.restart(downtime=0.3)
            await wait_until(lambda: collector.client.connects >= 2, what="reconnect")
            for outcome in ["good"] * 4 + ["scrap"]:
                await sim.produce("CNC-P", outcome)
            await wait_until(lambda: collector.totals() == {"good": 7, "scrap": 2, "rework": 0},
                             what=f"parts by path after the restart: {collector.totals()}")
            moved = sim._nodes[("CNC-P", "good")]
            assert [t.node_id for t in collector.client.tags if t.name == "good"] == [moved]
    finally:
        await sim.stop()
