"""End-to-end latency: a counter changing on a simulated machine -> the new WIP value visible through ``GET /wip``.

Separate processes, as deployed: PostgreSQL (a throw-away database), the simulators (``benchmarks/_common.py``'s
simulator processes, as for ``benchmarks/collectors.py``: asyncua servers and a pymodbus server, each logging the
wall-clock time of every counter change), one collector (``mes-bridge collect --url``: spool, then ``POST /events``
to API process 1 with a collector token), two API processes (``mes-bridge serve``), and this process polling
``GET /wip?by=order`` on API process 2 every ``--poll-ms`` (so every figure includes the hop through the database
between two API processes, and up to one poll interval of observation delay).

The plant: ``--opcua`` machines (10 per asyncua server, publishing interval ``--publish-ms``) and ``--modbus``
machines (one pymodbus endpoint, polled every 1 s), each on its own work order of FG-HINGE, reporting good parts at
operation 10 at ``--ppm`` parts per minute (steady load: machines x ppm / 60 events/s). Each part adds the same WIP
value to its order (materials at a constant moving average, standard minutes, no energy meter), so the number of
parts visible in an order's WIP is its WIP value over that increment; the k-th counter change of a machine is
visible at the first poll showing k parts on its order. Production starts only once the collector has stored its
first reading of every machine (its counter baseline, read from the spool), and counter values are taken relative
to that baseline: a part made before the collector's first reading is never counted, and matching by raw value
would then pin every later change on the part after it (one production interval late: the "1.1 s at exactly 60
parts/min" of an earlier run, when the collector took longer than the fixed 5 s it was given to start).

Baseline, measured in the same run under the same load: a single event ``POST /events`` straight to API process 1
every 0.5 s (order WO-1999, no collector, no machine), seen through the same poller -- the API + database share of
the end-to-end figure.

Run: ``python benchmarks/end_to_end.py`` (~2.5 min: start-up, ``--warmup`` s, then ``--seconds`` s measured).
Needs PostgreSQL at ``--pg-url`` (trust auth).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    drop_database,
    halt,
    percentile,
    read_changes,
    spawn_simulators,
    start_production,
    throwaway_database,
    wait_ready,
)
from mes_bridge import demo, demo_live, schema, tokens  # noqa: E402
from mes_bridge.bootstrap import Services  # noqa: E402
from mes_common.db import make_engine  # noqa: E402
from tests.e2e.api_server import ApiServer, free_port  # noqa: E402
from wip_costing.commands import ReleaseOrder  # noqa: E402

DIRECT_ORDER = "WO-1999"
FIRST_ORDER = 1001


def write_plant(folder: Path, opcua: int, modbus: int, ppm: int, publish_ms: int) -> dict[str, str]:
    """One YAML file per machine; returns machine -> its work order."""
    orders: dict[str, str] = {}
    sim = f'simulation: {{parts_per_minute: {ppm}, scrap_ratio: "0", rework_ratio: "0"'
    modbus_port = free_port()
    servers = [free_port() for _ in range((opcua + 9) // 10)]
    for n in range(opcua + modbus):
        order = f"WO-{FIRST_ORDER + n}"
        if n < opcua:
            name = f"CNC-{n:03d}"
            lines = [f"machine: {name}", "work_center: WC-LASER", "kind: cnc", "protocol: opcua",
                     f"endpoint: opc.tcp://127.0.0.1:{servers[n // 10]}/plant", "operation: 10",
                     f"publishing_interval_ms: {publish_ms}", "counters:",
                     f'  good: {{node: "ns=2;s={name}.good", bits: 32}}',
                     f'job: {{node: "ns=2;s={name}.ProductionJob"}}']
        else:
            name = f"PRESS-{n:03d}"
            lines = [f"machine: {name}", "work_center: WC-LASER", "kind: press", "protocol: modbus",
                     f"endpoint: tcp://127.0.0.1:{modbus_port}", f"device_id: {n - opcua + 1}", "operation: 10",
                     "poll_interval_ms: 1000", "counters:",
                     "  good: {register: {table: holding, address: 0, type: uint32}}",
                     'job: {register: {table: holding, address: 6, type: uint16}, format: "WO-{value}"}']
        lines.append(sim + f', job: "{order}"}}')
        (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        orders[name] = order
    return orders


def prepare(url: str, orders: dict[str, str]) -> tuple[str, str]:
    """Schema, plant, stock, one order per machine and the baseline's; returns (collector token, admin token)."""
    services = Services(make_engine(url))
    try:
        schema.upgrade(services.engine)
        quiet = lambda _line: None  # noqa: E731
        demo.load_plant(services, quiet)
        demo.load_plant(services, quiet, demo.SECOND_PRODUCT)
        demo_live.prepare(services, quiet)
        for order in [*orders.values(), DIRECT_ORDER]:
            services.handle(ReleaseOrder(order, "FG-HINGE", Decimal(1_000_000), on=demo.RELEASE_DATE))
        with services.engine.begin() as conn:
            collector, _ = tokens.create_token(conn, "collector", machines=tuple(sorted(orders)), name="bench")
            admin, _ = tokens.create_token(conn, "admin", name="bench-admin")
        with services.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        return collector, admin
    finally:
        services.close()


class Poller(threading.Thread):
    """``GET /wip?by=order`` every ``poll_ms``; keeps (wall-clock time, {order: value}) for each answer."""

    def __init__(self, url: str, token: str, poll_ms: int) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        self.interval = poll_ms / 1000
        self.seen: list[tuple[float, dict[str, Decimal]]] = []  # float-ok: wall clock
        self.request_ms: list[float] = []  # float-ok: milliseconds
        self.stop = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            started = time.time()
            rows = self.client.get("/wip", params={"by": "order"}).json()["rows"]
            at = time.time()
            self.request_ms.append((at - started) * 1000)
            self.seen.append((at, {r["work_order"]: Decimal(r["value"]) for r in rows}))
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


class DirectSender(threading.Thread):
    """The baseline: one event straight to the API every 0.5 s; keeps the wall-clock time of each send."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        self.sent: list[tuple[str, str, int, float]] = []  # float-ok: wall clock
        self.stop = threading.Event()

    def run(self) -> None:
        k = 0
        while not self.stop.wait(0.5):
            k += 1
            event = {"event_id": f"DIRECT:{k}", "work_order": DIRECT_ORDER, "operation": 10, "good": 1, "scrap": 0,
                     "rework": 0, "work_center": "WC-LASER", "provenance": "manual", "operator": "bench",
                     "source_time": datetime.now(UTC).isoformat()}
            at = time.time()
            response = self.client.post("/events", json=[event])
            if response.status_code == 200 and response.json()[0]["status"] == "applied":
                self.sent.append(("DIRECT", "good", k, at))


def visible_at(seen: Sequence[tuple[float, dict[str, Decimal]]], order: str) -> list[float]:  # float-ok
    """Wall-clock time at which the order's k-th part (index k-1) was first visible."""
    values = [(at, v.get(order, Decimal(0))) for at, v in seen]
    deltas = [b - a for (_, a), (_, b) in itertools.pairwise(values) if b > a]
    if not deltas:
        return []
    unit = min(deltas)  # one part (parts 1 s apart, polls tens of ms apart: most polls see one part at most)
    out: list[float] = []  # float-ok: wall clock
    for at, value in values:
        parts = int((value / unit).to_integral_value())
        while len(out) < parts:
            out.append(at)
    return out


def matched(changes: Sequence[tuple[str, str, int, float]], orders: dict[str, str],  # float-ok
            seen: Sequence[tuple[float, dict[str, Decimal]]], window: tuple[float, float],
            baselines: Mapping[str, int] | None = None) -> tuple[list[tuple[str, int, float, float]], int]:  # float-ok
    """(machine, counter value, changed at, first visible at) for each ``good`` counter change in ``window``, and
    how many were not seen by the end.

    The collector counts from the value it first read (its baseline: parts made before are not its to count), so
    the change to counter value v is the (v - baseline)-th part of the machine's order; a change at or below the
    baseline never becomes visible and is left out.
    """
    by_order: dict[str, list[float]] = {}  # float-ok: wall clock
    out: list[tuple[str, int, float, float]] = []  # float-ok: wall clock
    missing = 0
    for machine, counter, value, changed_at in changes:
        if counter != "good" or not window[0] <= changed_at <= window[1]:
            continue
        part = value - (baselines or {}).get(machine, 0)
        if part <= 0:
            continue
        order = orders[machine]
        if order not in by_order:
            by_order[order] = visible_at(seen, order)
        times = by_order[order]
        if part <= len(times):
            out.append((machine, value, changed_at, times[part - 1]))
        else:
            missing += 1
    return out, missing


def latencies(changes: Sequence[tuple[str, str, int, float]], orders: dict[str, str],  # float-ok
              seen: Sequence[tuple[float, dict[str, Decimal]]], window: tuple[float, float],
              baselines: Mapping[str, int] | None = None) -> tuple[list[float], int]:
    """Milliseconds from each ``good`` counter change in ``window`` to the first poll showing its part (``matched``),
    sorted, and how many were not seen by the end."""
    found, missing = matched(changes, orders, seen, window, baselines)
    return sorted((visible - changed) * 1000 for _, _, changed, visible in found), missing


def stages(found: Sequence[tuple[str, int, float, float]],  # float-ok: wall clock
           events: Mapping[str, tuple[float, float]]) -> dict[str, list[float]]:  # float-ok
    """Where each change's time went, in sorted milliseconds: change -> the collector's reading (the event's source
    time), reading -> API 1 starts applying it (its ``recorded_at``: spool, forwarder, HTTP), recorded -> first
    visible on API 2 (apply, commit, poll). ``events``: event id -> (source time, recorded at). A value coalesced
    into a later reading has no event of its own and is left out."""
    out: dict[str, list[float]] = {"read": [], "recorded": [], "visible": []}  # float-ok: milliseconds
    for machine, value, changed_at, visible in found:
        times = events.get(f"{machine}:good:0:{value}")
        if times is None:
            continue
        read, recorded = times
        out["read"].append((read - changed_at) * 1000)
        out["recorded"].append((recorded - read) * 1000)
        out["visible"].append((visible - recorded) * 1000)
    return {k: sorted(v) for k, v in out.items()}


def collector_baselines(spool: Path, machines: Sequence[str], timeout_s: float) -> dict[str, int]:
    """Wait until the collector has stored its first reading of every machine; their ``good`` counter values.

    Read from the spool's machine states (read-only, beside the running collector). Production must start only
    after this: a part made before a machine's first reading goes into its baseline and is never counted, which
    would shift every later change of that machine onto the next part (one production interval too late).
    """
    deadline = time.monotonic() + timeout_s
    found: dict[str, int] = {}
    while True:
        if spool.exists():
            # OperationalError: the collector is still creating the tables.
            with (contextlib.closing(sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5)) as db,
                  contextlib.suppress(sqlite3.OperationalError)):
                for machine, body in db.execute("SELECT machine, body FROM machine_state"):
                    good = json.loads(body)["counters"].get("good")
                    if good is not None:
                        found[machine] = int(good[1])
        if all(m in found for m in machines):
            return found
        if time.monotonic() > deadline:
            missing = sorted(set(machines) - set(found))
            raise SystemExit(f"the collector did not read {len(missing)} machines within {timeout_s:.0f} s: "
                             f"{missing[:5]}")
        time.sleep(0.2)


def logged_at(line: str) -> float:  # float-ok: wall clock
    """When a collector log line was written (its ``asctime``, local time, as ``logging`` writes it)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _line(label: str, values: Sequence[float], missing: int = 0) -> str:  # float-ok: milliseconds
    if not values:
        return f"{label:<52} n=0"
    extra = f" (not seen: {missing})" if missing else ""
    return (f"{label:<52} n={len(values):>5} p50 {percentile(values, 0.5):>6.0f} ms  p99 "
            f"{percentile(values, 0.99):>6.0f} ms  max {values[-1]:>6.0f} ms{extra}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--opcua", type=int, default=40, help="OPC UA machines (default 40)")
    p.add_argument("--modbus", type=int, default=10, help="Modbus machines (default 10)")
    p.add_argument("--ppm", type=int, default=60, help="parts per minute per machine (default 60)")
    p.add_argument("--publish-ms", type=int, default=50, help="OPC UA publishing interval (default 50)")
    p.add_argument("--poll-ms", type=int, default=25, help="GET /wip poll interval (default 25)")
    p.add_argument("--warmup", type=float, default=15.0, help="seconds of production before measuring")
    p.add_argument("--seconds", type=float, default=60.0, help="measured seconds")
    p.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--nice", type=int, default=0, help="niceness of the simulator processes (default 0)")
    args = p.parse_args(argv)
    engine = throwaway_database(args.pg_url)
    url = engine.url.render_as_string(hide_password=False)
    procs: list[subprocess.Popen[bytes]] = []
    apis: list[ApiServer] = []
    with tempfile.TemporaryDirectory(prefix="mesb-e2e-") as tmp:
        folder = Path(tmp)
        (folder / "plant").mkdir()
        try:
            orders = write_plant(folder / "plant", args.opcua, args.modbus, args.ppm, args.publish_ms)
            collector_token, admin_token = prepare(url, orders)
            apis = [ApiServer(url).start(60), ApiServer(url).start(60)]
            opcua_procs = max(1, min(4, (args.opcua + 9) // 10)) if args.opcua else 0
            simulators = spawn_simulators(folder, [("modbus", 1 if args.modbus else 0), ("opcua", opcua_procs)],
                                          nice=args.nice)
            procs += simulators
            wait_ready(folder, simulators, 180)
            env = {k: v for k, v in os.environ.items() if not k.startswith("MES_BRIDGE_")}
            env["MES_BRIDGE_DATABASE_URL"] = url
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "mes_bridge.cli", "collect", "--config", str(folder / "plant"), "--url",
                 apis[0].url, "--token", collector_token, "--spool", str(folder / "spool.db")],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(folder / "collector.log").open("w")))
            started = time.monotonic()
            baselines = collector_baselines(folder / "spool.db", list(orders), 180)
            connect_s = time.monotonic() - started
            poller, direct = Poller(apis[1].url, admin_token, args.poll_ms), DirectSender(apis[0].url, admin_token)
            poller.start()
            start_production(folder)
            direct.start()
            start = time.time()
            time.sleep(args.warmup + args.seconds)
            window = (start + args.warmup, time.time())
            time.sleep(5)  # the last changes of the window become visible
            halted = time.time()  # the collector logs each lost connection from here on: not counted
            halt(folder, simulators)
            poller.stop.set()
            direct.stop.set()
            poller.join()
            direct.join()
            warnings = [ln for ln in (folder / "collector.log").read_text().splitlines()
                        if "WARNING" in ln and logged_at(ln) < halted]
            changes = read_changes(folder)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
            for api in apis:
                api.stop()
    events_per_s = (args.opcua + args.modbus) * args.ppm / 60
    print(f"plant: {args.opcua} OPC UA machines (publishing {args.publish_ms} ms) + {args.modbus} Modbus machines "
          f"(1 s poll), {args.ppm} parts/min each = {events_per_s:.0f} events/s steady; one collector -> POST /events "
          f"on API 1; GET /wip?by=order on API 2 every {args.poll_ms} ms; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; measured {args.seconds:.0f} s after {args.warmup:.0f} s warm-up; the collector "
          f"had read every machine {connect_s:.1f} s after it started, before production began")
    with engine.connect() as conn:  # where the time goes: each change's event, by its id
        rows = conn.execute(text(
            "SELECT event_id, source_time, recorded_at FROM operation_events WHERE provenance = 'sensor'"))
        events = {r.event_id: (r.source_time.timestamp(), r.recorded_at.timestamp()) for r in rows}
    split: dict[str, dict[str, list[float]]] = {}  # float-ok: milliseconds
    for protocol, label in (("opcua", "OPC UA counter change -> GET /wip shows it"),
                            ("modbus", "Modbus counter change -> GET /wip shows it")):
        found, missing = matched(changes[protocol], orders, poller.seen, window, baselines)
        print(_line(label, sorted((visible - changed) * 1000 for _, _, changed, visible in found), missing))
        split[protocol] = stages(found, events)
    if warnings:
        print(f"collector warnings before the simulators stopped: {len(warnings)}, first: {warnings[0]}")
    base, missing = latencies(direct.sent, {"DIRECT": DIRECT_ORDER}, poller.seen, window)
    print(_line("baseline: POST /events (API 1) -> GET /wip (API 2)", base, missing))
    print(_line("GET /wip?by=order request itself", sorted(poller.request_ms)))
    print("where the time goes (per change with an event of its own):")
    for protocol, name in (("opcua", "OPC UA"), ("modbus", "Modbus")):
        print(_line(f"  {name}: change -> collector's reading", split[protocol]["read"]))
        print(_line(f"  {name}: reading -> API 1 applies it", split[protocol]["recorded"]))
        print(_line(f"  {name}: API 1 applies -> visible on API 2", split[protocol]["visible"]))
    drop_database(engine, args.pg_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
