"""Soak (slow, CI only): several Modbus machines for half a minute through server restarts, sink outages,
controller resets and 16-bit rollovers; every part made reaches the sink exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import pytest

from mes_bridge.collectors.runner import Collector
from mes_bridge.forwarder import RecordingSink
from mes_bridge.plc_config import load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator
from mes_bridge.spool import Spool

from .conftest import free_port, modbus_yaml, parts, wait_until


@pytest.mark.slow
async def test_soak_many_machines_with_faults(machine_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(6)
    names = [f"PRESS-{i}" for i in range(6)]
    for i, name in enumerate(names):
        (machine_dir / f"{name}.yaml").write_text(
            modbus_yaml(name, free_port(), bits=16 if i % 2 else 32, rate=1800, scrap_ratio="0.1", poll_ms=40))
    configs = load_configs(machine_dir)
    sim = ModbusSimulator(configs)
    for name in names[1::2]:
        # These wrap during the run: good ~500 parts short of 65,535, scrap ~35 (one part in ten is scrap).
        sim.set_counter(name, "good", 65000)
        sim.set_counter(name, "scrap", 65500)
    spool, sink = Spool(tmp_path / "spool.db", capacity=100_000), RecordingSink(tmp_path / "sink.db")
    collector = Collector(configs, spool, sink,
                          client_options={"modbus": {"backoff_base_s": 0.05, "backoff_cap_s": 0.5}})
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: all(s.state is not None for s in collector.sessions.values()), what="baselines")
        sim.start_production()
        for _ in range(30):
            await asyncio.sleep(1.0)
            fault = rng.choice(["none", "restart", "outage", "reset"])
            if fault == "restart":
                await sim.restart(downtime_s=rng.uniform(0.1, 0.8))
            elif fault == "outage":
                sink.available = False
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                sink.available = True
            elif fault == "reset":
                # Parts made between the last reading and a reset cannot be seen in counter values, so
                # the machine is stopped and read before its controller reboots (as on a real line).
                name = rng.choice(names[::2])  # 32-bit counters far from their wrap: a drop is a reset
                session, machine = collector.sessions[name], sim.machine(name)
                sim.pause(name)
                await wait_until(lambda s=session, m=machine: s.state is not None and all(
                    s.state.counters[c].raw == m.counters[c] for c in ("good", "scrap")), what=f"{name} read")
                epoch = session.state.counters["good"].epoch if session.state else 0
                sim.reset_counters(name)
                await wait_until(lambda s=session, e=epoch: s.state is not None and s.state.counters["good"].epoch > e,
                                 what=f"{name} reset seen")
                sim.resume(name)
        # However slow the host was during the faults, the 16-bit machines' counters must have wrapped before
        # production stops.
        wrapping = names[1::2]
        await wait_until(lambda: all(sim.machine(n).counters[c] < 65000 for n in wrapping for c in ("good", "scrap")),
                         timeout_s=60, what="the 16-bit counters to wrap")
        await sim.stop_production()
        truth = sum(sim.machine(n).produced_total() for n in names)
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: parts(sink.events()) == truth, timeout_s=30, what=f"{truth} parts")
        figures = {}
        for name in names:
            made = sim.machine(name).produced
            got = [e for e in sink.events() if e.machine == name]
            figures[name] = ((int(sum(e.good for e in got)), int(sum(e.scrap for e in got))),
                             (made["good"], made["scrap"]))
        records = {n: [r["kind"] for r in collector.metrics.health()["machines"][n]["records"]
                       if r["kind"] not in ("disconnected", "reconnect-gap")] for n in names}
        assert all(got == made for got, made in figures.values()), (figures, records, spool.depth)
        assert all("counter-rollover" in records[n] for n in wrapping), records
    finally:
        stop.set()
        await task
        await sim.stop()
        spool.close()
        sink.close()
