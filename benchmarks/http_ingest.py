"""Events/s through ``POST /events`` beside in-process ``ApplyEvents`` in the same run; ``/scan/report`` latency
from 50 concurrent terminals.

A throw-away PostgreSQL database with the example plant and 20 orders of a million units (as
``benchmarks/apply_events.py``), served by ``mes-bridge serve`` in another process (``--workers``, default 1).

1. Ingest: the same kind of events (one-unit completions over 20 orders, every posting) in batches of 100 and
   1,000, applied in turn by ``Services.handle(ApplyEvents(...))`` in this process and posted to ``/events`` over
   one keep-alive HTTP connection (collector-style, sequential); each ``--repeat`` times, the medians and their
   ratio (target: HTTP at least 0.8 of in-process).
2. Terminals: ``--terminals`` (default 50) asyncio clients, each with its own terminal token, report one good unit
   at operation 10 of an order, then wait an operator's pace (``--think-ms``, default 1,000 +/- 50 %) and report
   again, for ``--seconds`` after ``--warmup`` seconds of untimed reports (each terminal signed in first, as the
   page does when its token is entered); latency of every ``POST /scan/report`` (p50, p99, max; target p99 < 50 ms). The
   baseline: as many threads in this process applying the same reports with ``apply_events``, same pace. Then both
   without any pause (saturation figures, not the target).

Run: ``python benchmarks/http_ingest.py [--events 3000] [--repeat 3] [--workers 1] [--pg-url ...]`` (~3 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import drop_database, throwaway_database  # noqa: E402
from benchmarks.apply_events import ORDERS, events, run_apply  # noqa: E402
from mes_bridge import schema  # noqa: E402
from mes_bridge.bootstrap import Services  # noqa: E402
from tests.e2e.api_server import ApiServer  # noqa: E402
from tests.integration.wip_costing.plant import load_plant  # noqa: E402
from wip_costing.commands import ApplyEvents, ReleaseOrder  # noqa: E402

SPY_FORMATS = {".json": "chrometrace", ".txt": "raw"}  # else a flame graph (.svg)


def run_http(http: httpx.Client, batch: int, count: int) -> float:
    evs = events(f"h{batch}-{uuid.uuid4().hex[:6]}", count)
    start = time.perf_counter()
    for i in range(0, count, batch):
        answer = http.post("/events", json=evs[i:i + batch])
        answer.raise_for_status()
        bad = [o for o in answer.json() if o["status"] != "applied"]
        if bad:
            raise SystemExit(f"unexpected outcome {bad[0]}")
    return count / (time.perf_counter() - start)


def percentile(values: list[float], share: float) -> float:  # float-ok: milliseconds
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def terminals(url: str, tokens: list[str], seconds: float, think_ms: int,
                    slowest: list[tuple[float, float]] | None = None,
                    warmup_s: float = 0.0) -> list[float]:  # float-ok: seconds
    """Each terminal reports one unit, then waits ``think_ms`` (+/- 50 %); latencies in ms (and in ``slowest``,
    every report as (seconds since the start, ms)). Before the clock starts each terminal signs in (``GET /auth/me``,
    as the terminal page does when its token is entered) and all report untimed for ``warmup_s``: the figure is the
    steady state of a shift, not a freshly started server's first second."""
    latencies: list[float] = []  # float-ok: milliseconds

    async def terminal(n: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(n)
        if think_ms:
            await asyncio.sleep(rng.uniform(0, think_ms / 1000))  # terminals do not start in step
        while time.monotonic() < stop_at:
            body = {"work_order": f"WO-{n % ORDERS}", "operation": 10, "good": 1, "operator": f"E-{n}"}
            started = time.perf_counter()
            answer = await http.post("/scan/report", json=body)
            if started >= began_perf:
                latencies.append((time.perf_counter() - started) * 1000)
                if slowest is not None:
                    slowest.append((started - began_perf, latencies[-1]))
            if answer.status_code != 200 or answer.json()["status"] != "applied":
                raise SystemExit(f"terminal {n}: {answer.status_code} {answer.text}")
            if think_ms:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)

    # The clients are made before the clock starts: making one (its TLS context) takes a while, and made on the
    # way it blocked this loop under the other terminals' requests for seconds (their latency, measured here).
    clients = [httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
               for token in tokens]
    for signed_in in await asyncio.gather(*(http.get("/auth/me") for http in clients)):
        signed_in.raise_for_status()
    began_perf = time.perf_counter() + warmup_s
    stop_at = time.monotonic() + warmup_s + seconds
    try:
        await asyncio.gather(*(terminal(n, http) for n, http in enumerate(clients)))
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    return latencies


def in_process_terminals(services: Services, count: int, seconds: float, think_ms: int,
                         warmup_s: float = 0.0) -> list[float]:  # float-ok: seconds
    """The baseline: ``count`` threads in this process apply the same reports through the service layer (as the API
    does, without HTTP), same pace, after the same untimed ``warmup_s``."""
    latencies: list[float] = []  # float-ok: milliseconds
    began_perf = time.perf_counter() + warmup_s
    stop_at = time.monotonic() + warmup_s + seconds

    def terminal(n: int) -> None:
        rng = random.Random(n)
        if think_ms:
            time.sleep(rng.uniform(0, think_ms / 1000))
        while time.monotonic() < stop_at:
            event = {"event_id": f"local:{n}:{uuid.uuid4().hex}", "work_order": f"WO-{n % ORDERS}", "operation": 10,
                     "good": "1", "operator": f"E-{n}", "work_center": "WC-LASER", "provenance": "scan",
                     "source_time": datetime.now(UTC).isoformat()}
            started = time.perf_counter()
            [outcome] = services.handle(ApplyEvents([event]))
            if started >= began_perf:
                latencies.append((time.perf_counter() - started) * 1000)
            if outcome.status.value != "applied":
                raise SystemExit(f"in-process terminal {n}: {outcome}")
            if think_ms:
                time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)

    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(terminal, range(count)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events per run (default 3000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per batch size (default 3)")
    parser.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="terminal phase duration (default 20)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="terminal phase: seconds of untimed reports before the measured ones (default 5)")
    parser.add_argument("--think-ms", type=int, default=1000, help="mean pause between a terminal's reports")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--phase", choices=("all", "ingest", "terminals"), default="all",
                        help="run only the ingest or only the terminal phase (default: both)")
    parser.add_argument("--py-spy", metavar="SVG", help="record the server process with py-spy during the paced HTTP "
                        "terminal run (.svg: a flame graph, .json: a Chrome trace, .txt: raw stacks; needs py-spy)")
    parser.add_argument("--sides", default="http,in-process",
                        help="terminal phase: http, in-process or both (default http,in-process)")
    parser.add_argument("--modes", default="paced,saturation",
                        help="terminal phase: paced, saturation or both (default paced,saturation)")
    args = parser.parse_args()
    engine = throwaway_database(args.pg_url)
    url = engine.url.render_as_string(hide_password=False)
    services = Services(engine)  # as the API runs commands: handlers in units of work, shared caches
    server: ApiServer | None = None
    try:
        schema.upgrade(engine)
        load_plant(engine, ROOT / "mes_bridge" / "example_plant")
        with engine.begin() as conn:  # plenty of stock for every run
            conn.execute(text("UPDATE stock_balances SET qty = qty * 100000, value = value * 100000"))
        for n in range(ORDERS):
            services.handle(ReleaseOrder(f"WO-{n}", "FG-BRACKET", Decimal(1_000_000), on=date(2026, 11, 22)))
        services.handle(ApplyEvents(events("warmup", 300)))
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        server = ApiServer(url, workers=args.workers).start()
        token = server.token("planner", name="bench")
        print(f"PostgreSQL {engine.dialect.server_version_info}, API: {args.workers} worker(s), "
              f"{args.events} events per run, {ORDERS} orders, {args.repeat} runs per batch size, "
              f"{os.cpu_count()} CPUs")
        with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
            run_http(http, 100, 300)  # warm the server's process (imports, caches, connections)
        if args.phase in ("all", "ingest"):
            ingest(args, engine, services, server.url, token)
        if args.phase in ("all", "terminals"):
            terminal_phase(args, services, server)
    finally:
        if server is not None:
            server.stop()
        drop_database(engine, args.pg_url)


def ingest(args: argparse.Namespace, engine: Engine, services: Services, url: str, token: str) -> None:
    """Phase 1: events/s through ``POST /events`` beside in-process ``ApplyEvents``, batches of 100 and 1,000."""
    print(f"{'batch':>6} {'in-process/s':>13} {'(range)':>13} {'HTTP/s':>8} {'(range)':>13} {'ratio':>6}")
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
        for batch in (100, 1000):
            local, remote = [], []
            for _ in range(args.repeat):
                with engine.connect() as conn:
                    conn.exec_driver_sql("ANALYZE")
                    conn.commit()
                local.append(run_apply(services, batch, args.events))
                remote.append(run_http(http, batch, args.events))
            lo, re_ = statistics.median(local), statistics.median(remote)
            print(f"{batch:>6} {lo:>13,.0f} {min(local):>6,.0f}-{max(local):<6,.0f} {re_:>8,.0f} "
                  f"{min(remote):>6,.0f}-{max(remote):<6,.0f} {re_ / lo:>6.2f}")


def terminal_phase(args: argparse.Namespace, services: Services, server: ApiServer) -> None:
    """Phase 2: ``--terminals`` terminals reporting at operation 10, over HTTP and in-process, paced and not."""
    admin_token = server.token("admin")
    with httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        tokens = [http.post("/tokens", json={"role": "terminal", "work_centers": ["WC-LASER"],
                                             "name": f"T-BENCH-{n}"}).json()["token"]
                  for n in range(args.terminals)]
    print(f"{args.terminals} terminals reporting one unit at operation 10 (every report issues RM-STEEL from one "
          "stock balance, the row they all lock)")
    print(f"{'':<50} {'reports':>8} {'/s':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    modes = {"paced": (f"paced ({args.think_ms} ms +/- 50 %)", args.think_ms),
             "saturation": ("no pause (saturation)", 0)}
    for mode in args.modes.split(","):
        label, think = modes[mode.strip()]
        sides = {"http": "POST /scan/report", "in-process": "in-process ApplyEvents"}
        for where in (sides[side.strip()] for side in args.sides.split(",")):
            when: list[tuple[float, float]] = []  # float-ok: seconds, milliseconds
            spy = (subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--output", args.py_spy,
                                     "--duration", str(int(args.seconds)), "--subprocesses", "--idle",
                                     "--format",
                                     SPY_FORMATS.get(Path(args.py_spy).suffix, "flamegraph")],
                                    stdout=subprocess.DEVNULL)
                   if args.py_spy and think and where.startswith("POST") else None)
            started = time.monotonic()
            latencies = (asyncio.run(terminals(server.url, tokens, args.seconds, think, when, args.warmup))
                         if where.startswith("POST") else
                         in_process_terminals(services, args.terminals, args.seconds, think, args.warmup))
            elapsed = time.monotonic() - started - args.warmup  # the measured window's reports per second
            print(f"{where + ', ' + label:<50} {len(latencies):>8} {len(latencies) / elapsed:>5.0f} "
                  f"{percentile(latencies, 0.5):>7.1f} {percentile(latencies, 0.99):>7.1f} "
                  f"{max(latencies):>7.1f}", flush=True)
            if spy is not None:
                spy.wait(timeout=60)
            if when:
                print("    slowest (s after start: ms): " + ", ".join(
                    f"{at:.1f}: {ms:.0f}" for at, ms in sorted(when, key=lambda w: -w[1])[:12]))


if __name__ == "__main__":
    main()
