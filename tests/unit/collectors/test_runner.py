"""The runner keeps the other machines and the forwarder going when one client crashes, and restarts it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mes_bridge.collectors import runner
from mes_bridge.collectors.core import MachineSession, Snapshot
from mes_bridge.forwarder import RecordingSink
from mes_bridge.plc_config import MachineConfig, parse_config
from mes_bridge.spool import Spool

YAML = """\
machine: {name}
work_center: WC-PRESS
protocol: modbus
endpoint: tcp://127.0.0.1:{port}
counters:
  good: {{register: {{address: 0}}}}
work_order: WO-1
"""


class ScriptedClient:
    """Delivers counter values; the machine named CRASHY raises on its first run."""

    runs: ClassVar[dict[str, int]] = {}

    def __init__(self, configs: list[MachineConfig], **_: Any) -> None:
        assert len(configs) == 1  # the machines are on two endpoints: two connections
        self.config = configs[0]

    async def run_many(self, sessions: list[MachineSession], stop: asyncio.Event) -> None:
        (session,) = sessions
        name = self.config.machine
        ScriptedClient.runs[name] = ScriptedClient.runs.get(name, 0) + 1
        if name == "CRASHY" and ScriptedClient.runs[name] == 1:
            raise RuntimeError("driver bug")
        session.on_connected()
        for value in (10, 13, 20):
            await session.on_snapshot(Snapshot(name, {"good": value}, datetime.now(UTC), "poll"))
        await stop.wait()


async def test_a_crashing_client_is_restarted_and_others_carry_on(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "client_for", lambda configs, **kw: ScriptedClient(configs, **kw))
    monkeypatch.setattr(runner, "backoff_delay", lambda *a: 0.01)
    configs = [parse_config(YAML.format(name=n, port=p), f"{n}.yaml") for n, p in (("CRASHY", 1), ("STEADY", 2))]
    spool, sink = Spool(tmp_path / "s.db"), RecordingSink()
    collector = runner.Collector(configs, spool, sink)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    for _ in range(300):
        if len(sink.events()) == 4:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert sorted(e.event_id for e in sink.events()) == [
        "CRASHY:good:0:13", "CRASHY:good:0:20", "STEADY:good:0:13", "STEADY:good:0:20"]
    assert ScriptedClient.runs == {"CRASHY": 2, "STEADY": 1}
    kinds = [r["kind"] for r in collector.metrics.health()["machines"]["CRASHY"]["records"]]
    assert "client-crashed" in kinds
    spool.close()
    sink.close()


def test_machines_of_one_endpoint_share_a_connection_unless_their_settings_differ() -> None:
    opcua = """\
machine: {name}
work_center: WC-LASER
protocol: opcua
endpoint: opc.tcp://127.0.0.1:{port}
publishing_interval_ms: {publish}
counters:
  good: {{node: "ns=2;s={name}.Good"}}
work_order: WO-1
"""
    configs = [
        parse_config(opcua.format(name="A", port=4840, publish=100), "plc/a.yaml"),
        parse_config(opcua.format(name="B", port=4840, publish=100), "plc/b.yaml"),
        parse_config(opcua.format(name="C", port=4840, publish=500), "plc/c.yaml"),  # other publishing interval
        parse_config(opcua.format(name="D", port=4841, publish=100), "plc/d.yaml"),
        parse_config(YAML.format(name="P1", port=502), "plc/p1.yaml"),
        parse_config(YAML.format(name="P2", port=502).replace("work_order", "device_id: 2\nwork_order"), "plc/p2.yaml"),
    ]
    groups = [[c.machine for c in group] for group in runner.connection_groups(configs)]
    assert groups == [["A", "B"], ["C"], ["D"], ["P1", "P2"]]
