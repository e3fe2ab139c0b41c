"""One collector process: CPU, memory and change-to-spool latency for a simulated plant, idle baseline first.

The plant (simulated in OTHER processes, whose CPU is not counted):
- default: 100 Modbus TCP devices (10 endpoints x 10 unit ids) and 200 OPC UA machines on 20 asyncua servers
  (10 machines per server, 5 monitored items each = 1,000 items);
- ``--plant``: 500 Modbus devices (50 endpoints x 10 unit ids) and 1,200 OPC UA machines on 60 servers
  (20 per server) = 6,000 monitored items;
- Modbus devices polled at 1 Hz, 5 values each (good, scrap, rework, job, kWh meter); OPC UA publishing interval
  ``--publish-ms``; every machine producing ``--ppm`` parts per minute, out of step with the others.

The collector is the production code path in this process: ``mes_bridge.collectors.runner.Collector`` (one
connection per server or Modbus endpoint shared by its machines, one session per machine), the fsync'd SQLite
``Spool`` with group commit and a forwarder (an in-memory recording sink), so the CPU figure includes the
forwarding. Figures:
- CPU of this process (all threads) in cores, first with the plant idle (the baseline: connections, keepalives,
  polls), then while producing, over ``--seconds``; resident memory at both moments;
- latency from a counter's change on the simulated machine (wall clock when the simulator changed it) to the event
  for that counter value being committed in the spool (wall clock when the commit was done), p50 / p99 / max,
  per protocol. A Modbus change waits for the next 1 Hz poll, so its latency is bounded by the poll interval;
  an OPC UA change by the publishing interval.

Run: ``python benchmarks/collectors.py [--plant]`` (default plant about two minutes: ~40 s start-up of 20 asyncua
servers, a 10 s idle baseline, a 60 s measured run). ``--seconds``, ``--ppm``, ``--publish-ms`` adjust it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    free_port_range,
    halt,
    percentile,
    read_changes,
    spawn_simulators,
    start_production,
    wait_ready,
)
from mes_bridge.plc_config import load_configs  # noqa: E402
from mes_common.settings import LOG_FORMAT  # noqa: E402

COUNTERS = ("good", "scrap", "rework")


@dataclass(frozen=True)
class PlantSize:
    """How many servers and machines the simulated plant has, and how many processes simulate them."""

    opcua_servers: int
    opcua_machines_per_server: int
    opcua_processes: int
    modbus_endpoints: int
    modbus_devices_per_endpoint: int
    modbus_processes: int

    @property
    def opcua_items(self) -> int:
        return self.opcua_servers * self.opcua_machines_per_server * (len(COUNTERS) + 2)

    @property
    def modbus_devices(self) -> int:
        return self.modbus_endpoints * self.modbus_devices_per_endpoint


DEFAULT_PLANT = PlantSize(20, 10, 4, 10, 10, 1)  # 1,000 OPC UA items, 100 Modbus devices
FULL_PLANT = PlantSize(60, 20, 6, 50, 10, 2)  # --plant: 6,000 OPC UA items on 60 servers, 500 Modbus devices


# --------------------------------------------------------------------------------------------------- plant files


def write_plant(folder: Path, size: PlantSize, ppm: int, publish_ms: int, opcua_base: int, modbus_base: int) -> None:
    """The machine descriptions of the whole plant, one YAML file per machine (as ``plc_configs/``)."""
    sim = f'simulation: {{parts_per_minute: {ppm}, scrap_ratio: "0.05", rework_ratio: "0.02", kwh_per_part: "0.5"'
    for server in range(size.opcua_servers):
        for index in range(size.opcua_machines_per_server):
            name = f"CNC-{server:02d}-{index}"
            lines = [
                f"machine: {name}",
                "work_center: WC-LASER",
                "kind: cnc",
                "protocol: opcua",
                f"endpoint: opc.tcp://127.0.0.1:{opcua_base + server}/plant",
                "operation: 10",
                f"publishing_interval_ms: {publish_ms}",
                "counters:",
                *(f'  {c}: {{node: "ns=2;s={name}.{c}", bits: 32}}' for c in COUNTERS),
                f'job: {{node: "ns=2;s={name}.ProductionJob"}}',
                f'energy: {{node: "ns=2;s={name}.EnergyKwh"}}',
                sim + ', job: "WO-1"}',
            ]
            (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for endpoint in range(size.modbus_endpoints):
        for unit in range(1, size.modbus_devices_per_endpoint + 1):
            name = f"PRESS-{endpoint:02d}-{unit}"
            lines = [
                f"machine: {name}",
                "work_center: WC-PRESS",
                "kind: press",
                "protocol: modbus",
                f"endpoint: tcp://127.0.0.1:{modbus_base + endpoint}",
                f"device_id: {unit}",
                "operation: 20",
                "poll_interval_ms: 1000",
                "counters:",
                *(
                    f"  {c}: {{register: {{table: holding, address: {2 * i}, type: uint32}}}}"
                    for i, c in enumerate(COUNTERS)
                ),
                'job: {register: {table: holding, address: 6, type: uint16}, format: "WO-{value}"}',
                'energy: {register: {table: input, address: 10, type: uint32, scale: "0.01"}}',
                sim + ', job: "WO-1"}',
            ]
            (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------ the collector


def rss_mb() -> float:  # float-ok: megabytes
    """Resident memory of this process now (Linux /proc), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


async def collect(folder: Path, seconds: float, idle_seconds: float, watchdog: float) -> dict[str, Any]:
    from mes_bridge.collectors.runner import Collector, connection_groups
    from mes_bridge.forwarder import RecordingSink
    from mes_bridge.spool import Spool

    committed: dict[str, float] = {}  # event id -> wall clock after its commit returned
    read_to_commit: dict[str, list[float]] = {"opcua": [], "modbus": []}  # ms from the client's reading
    protocol_of: dict[str, str] = {}

    class TimedSpool(Spool):
        def submit(self, machine: str, events: Any, state: Any) -> Future[bool]:
            done = super().submit(machine, events, state)

            def timed(future: Future[bool]) -> None:  # runs in the writer thread right after the commit
                if future.exception() is not None or not future.result():
                    return
                now = time.time()  # float-ok: wall clock
                for event in events:
                    if event.event_id not in committed:
                        committed[event.event_id] = now
                        read_to_commit[protocol_of[machine]].append((now - event.source_time.timestamp()) * 1000)

            done.add_done_callback(timed)
            return done

    configs = load_configs(folder / "plant")
    protocol_of.update({c.machine: c.protocol for c in configs})
    spool = TimedSpool(folder / "spool.db", capacity=1_000_000)
    collector = Collector(configs, spool, RecordingSink(), client_options={"opcua": {"watchdog_interval": watchdog}})
    stop = asyncio.Event()
    running = asyncio.create_task(collector.run(stop))
    started = time.monotonic()
    while any(s.state is None for s in collector.sessions.values()):
        if time.monotonic() - started > 120:
            missing = [m for m, s in collector.sessions.items() if s.state is None]
            raise SystemExit(f"collector did not read {len(missing)} machines within 120 s: {missing[:5]}")
        await asyncio.sleep(0.2)
    print(f"collector connected to {len(configs)} machines in {time.monotonic() - started:.1f}s", flush=True)

    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(idle_seconds)
    idle_cores = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    rss_idle = rss_mb()

    start_production(folder)
    await asyncio.sleep(2.0)  # production ramps up; measure steady state
    events_before = len(committed)
    for values in read_to_commit.values():
        values.clear()
    cpu0, wall0 = time.process_time(), time.monotonic()
    window_start = time.time()  # float-ok: wall clock
    await asyncio.sleep(seconds)
    busy_cores = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    window_end = time.time()  # float-ok: wall clock
    events_in_window = len(committed) - events_before
    in_window = {k: sorted(v) for k, v in read_to_commit.items()}
    rss_busy = rss_mb()
    await asyncio.sleep(1.5)  # the window's last changes reach the spool
    stop.set()
    await running
    groups = spool.groups
    spool.close()
    return {
        "machines": len(configs),
        "connections": len(connection_groups(configs)),
        "groups": groups,
        "rss_idle_mb": rss_idle,
        "rss_busy_mb": rss_busy,
        "idle_cores": idle_cores,
        "busy_cores": busy_cores,
        "events_per_s": events_in_window / seconds,
        "committed": committed,
        "window": (window_start, window_end),
        "read_to_commit": in_window,
    }


def latencies(folder: Path, committed: dict[str, float], window: tuple[float, float]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"opcua": [], "modbus": []}
    for protocol, changes in read_changes(folder).items():
        for machine, counter, value, changed_at in changes:
            if not window[0] <= changed_at <= window[1]:
                continue
            at = committed.get(f"{machine}:{counter}:0:{value}")
            if at is not None:  # values coalesced into a later reading have no event of their own
                out[protocol].append((at - changed_at) * 1000)
    return {k: sorted(v) for k, v in out.items()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="measured production window")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle baseline window")
    p.add_argument("--ppm", type=int, default=12, help="parts per minute per machine")
    p.add_argument("--publish-ms", type=int, default=100, help="OPC UA publishing interval")
    p.add_argument("--watchdog-s", type=float, default=1.0, help="OPC UA keepalive probe interval")
    p.add_argument("--plant", action="store_true",
                   help="6,000 OPC UA items on 60 servers and 500 Modbus devices (default: 1,000 / 100)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="mesb-bench-") as tmp:
        folder = Path(tmp)
        (folder / "plant").mkdir()
        size = FULL_PLANT if args.plant else DEFAULT_PLANT
        base = free_port_range(size.opcua_servers + size.modbus_endpoints)
        write_plant(folder / "plant", size, args.ppm, args.publish_ms, opcua_base=base,
                    modbus_base=base + size.opcua_servers)
        servers: list[subprocess.Popen[bytes]] = []
        try:
            # The machines stand in for PLCs on their own hardware: on this host they yield the CPU (nice 10).
            servers = spawn_simulators(folder, [("modbus", size.modbus_processes),
                                                ("opcua", size.opcua_processes)], nice=10)
            ready_s = wait_ready(folder, servers, 600)
            print(f"simulators ready in {ready_s:.1f}s ({size.opcua_servers} OPC UA servers, "
                  f"{size.modbus_endpoints} Modbus endpoints)", flush=True)
            result = asyncio.run(collect(folder, args.seconds, args.idle_seconds, args.watchdog_s))
            halt(folder, servers)
            lat = latencies(folder, result["committed"], result["window"])
        finally:
            (folder / "halt").touch()
            for server in servers:
                if server.poll() is None:
                    server.send_signal(signal.SIGTERM)
                    server.wait(10)

    opcua_items, modbus_devices = size.opcua_items, size.modbus_devices
    print(
        f"\nplant: {modbus_devices} Modbus devices @ 1 Hz + {opcua_items} OPC UA monitored items on "
        f"{size.opcua_servers} servers (publishing {args.publish_ms} ms, keepalive probe {args.watchdog_s:g} s), "
        f"{args.ppm} parts/min per machine, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"collector CPU, plant idle (baseline): {result['idle_cores']:.3f} cores")
    print(
        f"collector CPU, producing:            {result['busy_cores']:.3f} cores "
        f"({result['busy_cores'] / max(result['idle_cores'], 1e-9):.1f}x idle; aim < 0.5)"
    )
    print(f"events committed to the spool:       {result['events_per_s']:.1f}/s over {args.seconds:.0f} s "
          f"in {result['groups']} transactions")
    print(f"collector memory (RSS): {result['rss_idle_mb']:.0f} MB idle, {result['rss_busy_mb']:.0f} MB after "
          f"producing ({result['machines']} machines, {result['connections']} connections)")
    for label, table in (("change -> spool commit", lat), ("read -> spool commit  ", result["read_to_commit"])):
        for protocol, values in table.items():
            print(
                f"latency {label}, {protocol:6}: n={len(values)} p50={percentile(values, 0.5):.0f} ms "
                f"p99={percentile(values, 0.99):.0f} ms max={values[-1] if values else float('nan'):.0f} ms"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
