"""The collector process killed with SIGKILL mid-run and restarted: nothing lost, nothing counted twice.

The collector runs as a subprocess (``python -m mes_bridge.collectors.runner``) forwarding into a SQLite
recording sink that survives the kill; the simulated machine keeps producing meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from mes_bridge.forwarder import RecordingSink
from mes_bridge.plc_config import load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator

from .conftest import free_port, modbus_yaml, parts, wait_until

ROOT = Path(__file__).resolve().parents[3]


def _start(machine_dir: Path, spool: Path, sink: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "mes_bridge.collectors.runner", "--config", str(machine_dir), "--spool",
             str(spool), "--sink", str(sink), *extra],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _has_state(spool: Path) -> bool:
    if not spool.exists():
        return False
    try:
        with sqlite3.connect(spool) as db:
            return db.execute("SELECT COUNT(*) FROM machine_state").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def _scrape(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return ""


async def test_collector_killed_with_sigkill_and_restarted(machine_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    (machine_dir / "m.yaml").write_text(modbus_yaml("PRESS-K", port, scrap_ratio="0.2", rate=1200, poll_ms=30))
    sim = ModbusSimulator(load_configs(machine_dir))
    spool, sink_path, log = tmp_path / "spool.db", tmp_path / "sink.db", tmp_path / "collector.log"
    await sim.start(produce=False)
    proc = _start(machine_dir, spool, sink_path, log)
    sink = None
    try:
        await wait_until(lambda: _has_state(spool), timeout_s=20, what="the collector's baseline reading")
        sim.start_production()
        machine = sim.machine("PRESS-K")
        await wait_until(lambda: machine.produced_total() >= 10, timeout_s=30, what="10 parts made before the kill")
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(proc.wait, 10) == -signal.SIGKILL
        killed_at = machine.produced_total()
        # The machine keeps producing while no collector runs: wait for parts made in that gap.
        await wait_until(lambda: machine.produced_total() >= killed_at + 5, timeout_s=30,
                         what="5 parts made while no collector runs")
        made_while_down = machine.produced_total()
        metrics_port = free_port()
        proc = _start(machine_dir, spool, sink_path, log, "--metrics-port", str(metrics_port))
        await wait_until(lambda: 'mes_collector_connected{machine="PRESS-K"} 1.0' in _scrape(metrics_port),
                         timeout_s=20, what="the restarted collector's metrics")
        await wait_until(lambda: machine.produced_total() >= made_while_down + 10, timeout_s=30,
                         what="10 parts made after the restart")
        await sim.stop_production()
        truth = sim.machine("PRESS-K").produced_total()
        sink = RecordingSink(sink_path)
        await wait_until(lambda: parts(sink.events()) == truth, timeout_s=20,
                         what=f"{truth} parts in the sink")
        events = sink.events()
        assert killed_at < made_while_down < truth  # parts made before, during and after the kill
        assert sum(e.scrap for e in events) == sim.machine("PRESS-K").produced["scrap"]
    finally:
        if proc.poll() is None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 10)
        await sim.stop()
        if sink is not None:
            sink.close()
    assert proc.returncode == 0, log.read_text()
