"""Scaffolding shared by the collector benchmarks and the spool's SIGKILL test, written once.

Simulated plants in other processes (``benchmarks/collectors.py``, ``benchmarks/end_to_end.py``):
``spawn_simulators`` starts one process per shard (``python -m benchmarks._common serve ...``: asyncua servers or a
pymodbus server for its share of the plant folder's machines), ``wait_ready`` waits for them, ``start_production``
and ``halt`` signal them through files in the folder, and ``read_changes`` returns what they logged: the wall-clock
time of every counter change, per protocol, for the latency figures.

Throw-away PostgreSQL databases for the database benchmarks: ``throwaway_database`` makes one on the server of an
admin URL and returns an engine on it, ``drop_database`` disposes of the engine and drops the database.

Reading producers (``benchmarks/spool.py``, ``tests/integration/collectors/spool_child.py``): ``press_sessions``
gives machine sessions on one spool, and ``read_counter`` drives one of them as fast as its commits return.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mes_bridge.collectors.core import MachineSession
    from mes_bridge.plc_config import MachineConfig
    from mes_bridge.spool import Spool

ROOT = Path(__file__).resolve().parent.parent
Change = tuple[str, str, int, float]  # machine, counter, raw value, wall-clock time of the change


def throwaway_database(admin_url: str) -> Engine:
    """An engine on a new, empty database ``mesb_bench_XXXXXXXX`` on the server of ``admin_url``."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mes_common.db import make_engine

    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"mesb_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_engine(make_url(admin_url).set(database=name).render_as_string(hide_password=False))


def drop_database(engine: Engine, admin_url: str) -> None:
    """Dispose of ``engine`` and drop its database (made by ``throwaway_database``), whoever is still connected."""
    from sqlalchemy import text

    from mes_common.db import make_engine

    engine.dispose()
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{engine.url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def percentile(sorted_values: Sequence[float], share: float) -> float:  # float-ok: milliseconds
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports on 127.0.0.1 (others may run a benchmark too)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000 - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise SystemExit(f"no {count} consecutive free ports found")


# ------------------------------------------------------------------------------------------ simulator processes


def shards(configs: Sequence[MachineConfig], protocol: str, processes: int) -> list[list[MachineConfig]]:
    """The machines of ``protocol`` split over ``processes``, whole endpoints at a time."""
    by_endpoint: dict[str, list[MachineConfig]] = defaultdict(list)
    for config in configs:
        if config.protocol == protocol:
            by_endpoint[config.endpoint].append(config)
    groups = list(by_endpoint.values())
    return [[c for group in groups[i::processes] for c in group] for i in range(processes)]


def spawn_simulators(folder: Path, plan: Sequence[tuple[str, int]], nice: int) -> list[subprocess.Popen[bytes]]:
    """One simulator process per shard of ``plan`` ((protocol, processes) pairs) serving ``folder / "plant"``,
    at niceness ``nice`` (10: the machines stand in for PLCs on their own hardware and yield the CPU)."""
    procs = []
    for protocol, processes in plan:
        for shard in range(processes):
            with (folder / f"simulator-{protocol}-{shard}.log").open("w") as log:  # what a dying one said
                procs.append(subprocess.Popen([sys.executable, "-m", "benchmarks._common", "serve", str(folder),
                                               protocol, str(shard), str(processes), str(nice)],
                                              cwd=ROOT, stderr=log))
    return procs


def wait_ready(folder: Path, procs: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> float:  # float-ok
    """Wait until every simulator process serves its machines; returns the seconds it took."""
    started = time.monotonic()
    while len(list(folder.glob("ready-*"))) < len(procs):
        for proc in procs:
            if proc.poll() is not None:
                said = "".join(f"\n  {line}" for line in _tail(folder, proc))
                raise SystemExit(f"a simulator process died during start-up (exit {proc.returncode}):{said}")
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"the simulators did not start within {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def _tail(folder: Path, proc: subprocess.Popen[bytes], lines: int = 15) -> list[str]:
    """The last lines a simulator process wrote to its log (its stderr)."""
    args = [str(a) for a in proc.args] if isinstance(proc.args, list) else []
    log = folder / f"simulator-{args[-4]}-{args[-3]}.log" if len(args) >= 4 else None
    if log is None or not log.exists():
        return []
    return log.read_text(errors="replace").splitlines()[-lines:]


def start_production(folder: Path) -> None:
    (folder / "go").touch()


def halt(folder: Path, procs: Sequence[subprocess.Popen[bytes]], timeout_s: float = 60.0) -> None:  # float-ok
    """Stop production and the servers; each process writes its changes before it exits."""
    (folder / "halt").touch()
    for proc in procs:
        proc.wait(timeout_s)


def read_changes(folder: Path) -> dict[str, list[Change]]:
    """Every counter change the simulator processes logged, per protocol ("opcua", "modbus")."""
    changes: dict[str, list[Change]] = {"opcua": [], "modbus": []}
    for path in folder.glob("changes-*.json"):
        changes[path.name.split("-")[1]] += [(m, c, int(v), float(at)) for m, c, v, at in json.loads(path.read_text())]
    return changes


async def serve(folder: Path, protocol: str, shard: int, processes: int) -> None:
    """A simulator process: serve its share of the plant, produce after ``go``, log every counter change."""
    from mes_bridge.plc_config import load_configs

    configs = shards(load_configs(folder / "plant"), protocol, processes)[shard]
    changes: list[Change] = []
    simulators: list[Any] = []
    if protocol == "opcua":
        from mes_bridge.simulators.opcua_sim import build_simulators

        def on_change(machine: str, tag: str, value: object, at: float) -> None:  # float-ok: wall clock
            if tag not in ("job", "energy"):
                changes.append((machine, tag, int(value), at))  # type: ignore[call-overload]

        simulators = build_simulators(configs, on_change=on_change)
        for sim in simulators:
            await sim.start(produce=False)
    else:
        from mes_bridge.simulators.modbus_sim import ModbusSimulator

        modbus = ModbusSimulator(configs)
        for machine in modbus.machines.values():
            machine.produce = _logged(machine, changes)  # type: ignore[method-assign]
        await modbus.start(produce=False)
        simulators = [modbus]
    (folder / f"ready-{protocol}-{shard}").touch()
    while not (folder / "go").exists():
        await asyncio.sleep(0.05)
    if protocol == "opcua":
        for sim in simulators:
            sim.start_production()  # each machine at its own phase
        producers = []
    else:
        # Out of step like real presses: each machine starts at a random phase of its cycle.
        producers = [asyncio.create_task(_produce(m)) for sim in simulators for m in sim.machines.values()]
    while not (folder / "halt").exists():
        await asyncio.sleep(0.05)
    for task in producers:
        task.cancel()
    await asyncio.gather(*producers, return_exceptions=True)
    for sim in simulators:
        await sim.stop()
    with (folder / f"changes-{protocol}-{shard}.json").open("w") as out:
        json.dump(changes, out)


async def _produce(machine: Any) -> None:
    interval = 60 / float(machine.config.simulation.parts_per_minute)  # float-ok: seconds
    await asyncio.sleep(random.random() * interval)
    next_at = time.monotonic()
    while True:
        machine.produce(machine.next_outcome())
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def _logged(machine: Any, changes: list[Change]) -> Any:
    produce = machine.produce

    def wrapper(outcome: str = "good", parts: int = 1) -> None:
        produce(outcome, parts)
        counter = machine.counter_for(outcome)
        changes.append((machine.name, counter, machine.counters[counter], time.time()))  # float-ok: wall clock

    return wrapper


# --------------------------------------------------------------------------------------------- reading producers

PRESS = """\
machine: {machine}
work_center: WC-PRESS
protocol: modbus
endpoint: tcp://127.0.0.1:5020
operation: 20
counters:
  good: {{register: {{address: 0, type: uint32}}}}
work_order: WO-1
"""


def press_sessions(spool: Spool, machines: int) -> list[MachineSession]:
    """``machines`` presses (``M-0000`` ...) with one ``good`` counter and a fixed work order, on one spool."""
    from mes_bridge.collectors.core import MachineSession
    from mes_bridge.plc_config import parse_config

    return [MachineSession(parse_config(PRESS.format(machine=f"M-{n:04d}"), "m.yaml"), spool)
            for n in range(machines)]


async def read_counter(session: MachineSession, start: int, *, until: float | None = None,  # float-ok: seconds
                       acknowledged: Callable[[str, int, float], None] | None = None) -> None:
    """Read the machine's ``good`` counter as fast as its commits return: one part per reading, from ``start`` (a
    machine the spool does not know) or one past the position already on disk, until ``time.perf_counter()``
    passes ``until`` (or forever).

    The first reading of an unknown machine is its baseline (no part). After every later reading whose commit moved
    the session's position, ``acknowledged(machine, value, seconds from the reading to its commit)``.
    """
    from mes_bridge.collectors.core import Snapshot

    state = await asyncio.to_thread(session.store.load_state, session.machine)
    last = state.counters["good"].raw if state is not None else None
    value = start if last is None else last + 1
    while until is None or time.perf_counter() < until:
        read_at = time.perf_counter()
        await session.on_snapshot(Snapshot(session.machine, {"good": value}, datetime.now(UTC), "poll"))
        assert session.state is not None
        if session.state.counters["good"].raw == value:
            if last is not None and acknowledged is not None:
                acknowledged(session.machine, value, time.perf_counter() - read_at)
            last = value
            value += 1
        await asyncio.sleep(0)


def main(argv: Sequence[str]) -> int:
    """``python -m benchmarks._common serve FOLDER PROTOCOL SHARD PROCESSES NICE``: one simulator process."""
    if len(argv) != 6 or argv[0] != "serve":
        print(main.__doc__, file=sys.stderr)
        return 2
    _, folder, protocol, shard, processes, nice = argv
    os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    from mes_common.settings import LOG_FORMAT

    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(serve(Path(folder), protocol, int(shard), int(processes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
