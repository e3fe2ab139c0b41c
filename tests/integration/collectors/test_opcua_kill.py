"""Processes dying or freezing: nothing lost, nothing counted twice.

- The collector killed with SIGKILL and restarted: it runs as a subprocess (the runner's entry point,
  ``python -m mes_bridge.collectors.runner``) forwarding into a SQLite recording sink that survives the kill; the
  simulated CNC keeps producing in this process meanwhile.
- The server frozen with SIGSTOP (TCP connection open, no answers): the simulator runs as a subprocess; only the
  client's keepalive probe can notice, and the counts made before and after the freeze all arrive.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mes_bridge.forwarder import RecordingSink
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from tests.integration.collectors.opcua_helpers import (
    RunningCollector,
    collected,
    free_port,
    machine_config,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _start(machine_dir: Path, spool: Path, sink: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mes_bridge.collectors.runner", "--config", str(machine_dir)]
    command += ["--spool", str(spool), "--sink", str(sink)]
    with log.open("ab") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )


def _spooled_state(spool: Path) -> bool:
    if not spool.exists():
        return False
    try:
        with sqlite3.connect(spool) as db:
            return bool(db.execute("SELECT COUNT(*) FROM machine_state").fetchone()[0])
    except sqlite3.Error:
        return False


def _sink_totals(sink_path: Path, config: object) -> dict[str, int]:
    if not sink_path.exists():
        return {}
    sink = RecordingSink(sink_path)
    try:
        return collected(sink.events(), config)  # type: ignore[arg-type]
    finally:
        sink.close()


async def test_opcua_collector_killed_with_sigkill_and_restarted(tmp_path: Path) -> None:
    machine_dir = tmp_path / "plc"
    config = machine_config(machine_dir, "CNC-K", free_port(), parts_per_minute=1200, scrap_ratio="0.2")
    sim = OpcUaSimulator([config])
    spool, sink_path, log = tmp_path / "spool.db", tmp_path / "sink.db", tmp_path / "collector.log"
    await sim.start(produce=False)
    proc = _start(machine_dir, spool, sink_path, log)
    try:
        await wait_until(lambda: _spooled_state(spool), timeout=30, what="the collector's baseline reading")
        sim.start_production()
        await wait_until(
            lambda: sum(_sink_totals(sink_path, config).values()) >= 10, timeout=15, what="first parts in the sink"
        )
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(proc.wait, 10) == -signal.SIGKILL
        killed_at = sum(sim.produced("CNC-K").values())
        # The machine keeps producing while no collector runs: wait for parts made in that gap.
        await wait_until(lambda: sum(sim.produced("CNC-K").values()) >= killed_at + 5, timeout=30,
                         what="5 parts made while no collector runs")
        made_while_down = sum(sim.produced("CNC-K").values())
        proc = _start(machine_dir, spool, sink_path, log)
        await wait_until(
            lambda: sum(_sink_totals(sink_path, config).values()) > made_while_down + 10,
            timeout=30,
            what="parts made after the restart in the sink",
        )
        sim.pause("CNC-K")
        produced = sim.produced("CNC-K")
        await wait_until(
            lambda: _sink_totals(sink_path, config) == produced, timeout=20, what=f"sink == produced {produced}"
        )
        assert produced["scrap"] > 0 and killed_at < made_while_down < sum(produced.values())
    finally:
        if proc.poll() is None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 15)
        await sim.stop()
    assert proc.returncode == 0, log.read_text()


FROZEN_SERVER = """
import asyncio, json, sys
from pathlib import Path
from mes_bridge.plc_config import load_config
from mes_bridge.simulators.opcua_sim import OpcUaSimulator

async def main(config_path: Path, control: Path) -> None:
    config = load_config(config_path)
    sim = OpcUaSimulator([config])
    await sim.start(produce=False)
    (control / "ready").touch()
    while not (control / "go").exists():
        await asyncio.sleep(0.02)
    sim.start_production()
    while not (control / "halt").exists():
        await asyncio.sleep(0.02)
    sim.pause()
    (control / "produced.json").write_text(json.dumps(sim.produced(config.machine)))
    while not (control / "exit").exists():
        await asyncio.sleep(0.02)
    await sim.stop()

asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
"""


async def test_frozen_server_is_detected_by_keepalive_and_nothing_is_lost(tmp_path: Path) -> None:
    """A server that stops answering but keeps its TCP connection open (SIGSTOP): only the keepalive notices."""
    control = tmp_path / "control"
    control.mkdir()
    config = machine_config(tmp_path / "plc", "CNC-F", free_port(), parts_per_minute=1200, scrap_ratio="0.1")
    assert config.source is not None
    server = subprocess.Popen([sys.executable, "-c", FROZEN_SERVER, str(config.source), str(control)], cwd=ROOT)
    try:
        await wait_until(lambda: (control / "ready").exists(), timeout=30, what="simulator process ready")
        async with RunningCollector(config, request_timeout=1.0, watchdog_interval=0.5) as collector:
            await collector.baseline()
            (control / "go").touch()
            await wait_until(lambda: sum(collector.totals().values()) >= 10, what="first parts")
            server.send_signal(signal.SIGSTOP)
            frozen_at = time.monotonic()
            await wait_until(lambda: not collector.session.connected, timeout=10, what="loss detected")
            detected_after = time.monotonic() - frozen_at
            await asyncio.sleep(0.5)
            server.send_signal(signal.SIGCONT)
            await wait_until(lambda: collector.client.connects >= 2, timeout=20, what="reconnect after thaw")
            (control / "halt").touch()
            await wait_until(lambda: (control / "produced.json").exists(), what="final production figures")
            produced = json.loads((control / "produced.json").read_text())
            await wait_until(lambda: collector.totals() == produced, what=f"collected == produced {produced}")
            assert detected_after < 5.0
            assert "reconnect-gap" in collector.session.kinds()
    finally:
        server.send_signal(signal.SIGCONT)
        (control / "exit").touch()
        try:
            await asyncio.to_thread(server.wait, 15)
        finally:
            if server.poll() is None:
                server.kill()
