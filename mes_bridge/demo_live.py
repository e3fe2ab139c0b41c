"""The live part of the demo: the API with its pages, simulated machines and collectors, until Ctrl-C.

Order of start-up, so that nothing a newcomer would take for a failure is printed: the API (uvicorn, in a thread
of this process, on the demo's database) first, then the simulators' servers (idle), then -- once every
simulator accepts TCP connections -- the collectors, then production, machine by machine in routing order.

The live order is WO-2 for the second product, FG-HINGE, on its own raw materials: the live run never moves the
stock, WIP or finished goods of the worked example (WO-1, FG-BRACKET, RM-STEEL, RM-BOLT), so the README's tour
figures hold however long the demo ran.

A second run resumes: stock top-up and the live work order are idempotent, the collectors' spool and counter
positions survive in the data directory, and the simulators' counters restarting at zero are recognised by the
collectors as a controller reset (a new counter epoch), so nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledger.commands import PostReceipt
from ledger.queries import onhand
from mes_bridge.bootstrap import Services
from mes_bridge.collectors.runner import Collector
from mes_bridge.collectors.scan_feed import DatabaseScanFeed
from mes_bridge.demo import RELEASE_DATE, Echo
from mes_bridge.forwarder import InProcessForwarder, sleep_or_stop
from mes_bridge.plc_config import MachineConfig, load_configs
from mes_bridge.simulators import stop_simulators
from mes_bridge.spool import Spool
from mes_common.errors import DomainError
from mes_common.money import ZERO, fmt, fmt_qty
from wip_costing import reports
from wip_costing.commands import ReleaseOrder

LIVE_ORDER = "WO-2"
LIVE_ITEM = "FG-HINGE"
LIVE_QTY = Decimal(100_000)
SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "plc_configs"
# Enough raw material for the live order, received once (the idempotency key makes a re-run a no-op).
TOP_UP = (("RM-SHEET", Decimal(200_000), Decimal("300000.00")), ("RM-PIN", Decimal(100_000), Decimal("40000.00")),
          ("RM-SCREW", Decimal(400_000), Decimal("20000.00")))
APP_FACTORY = "api.app:create_app"
QUIET_LOGGERS = ("asyncua", "pymodbus", "mes_bridge", "uvicorn", "uvicorn.error", "uvicorn.access")


class DemoError(DomainError):
    """The live demo cannot start (a port in use, a simulator that never listened)."""


def default_configs() -> Path:
    """The shipped ``plc_configs/`` (next to the sources in a checkout, or in the working directory, as in the
    Docker image); ``--config`` names another folder."""
    for folder in (SHIPPED_CONFIGS, Path("plc_configs")):
        if folder.is_dir():
            return folder
    raise DemoError("error: no machine descriptions found (plc_configs/); pass --config DIR")


def prepare(services: Services, echo: Echo) -> None:
    """Stock for the live order and the order itself (both idempotent)."""
    moment = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    for item, qty, value in TOP_UP:
        services.handle(PostReceipt(key=f"demo:live-stock:{item}", item=item, qty=qty, to_location="STORES",
                                    value=value, actor="demo", reason="stock for the live demo order",
                                    effective_at=moment, reference=LIVE_ORDER))
    with services.read() as conn:
        known = reports.order_view(conn, LIVE_ORDER) is not None
    if not known:
        services.handle(ReleaseOrder(LIVE_ORDER, LIVE_ITEM, LIVE_QTY, on=RELEASE_DATE))
        echo(f"  released {LIVE_ORDER}: {LIVE_QTY} {LIVE_ITEM} for the simulated machines")
    else:
        echo(f"  {LIVE_ORDER} already released (a previous run): resuming")


def live_configs(folder: Path) -> list[MachineConfig]:
    """The shipped machine descriptions, all working on the live order; the vision station's failures go back
    to the press (the routing's rework loop) instead of the scrap bin."""
    configs = []
    for config in load_configs(folder):
        update: dict[str, Any] = {}
        if config.simulation is not None:
            update["simulation"] = config.simulation.model_copy(update={"job": LIVE_ORDER})
        if config.inspection is not None:
            update["inspection"] = config.inspection.model_copy(update={"fail_as": "rework"})
        configs.append(config.model_copy(update=update))
    return configs


class ApiThread:
    """The HTTP API and its pages under uvicorn, in a thread of this process (no signal handlers of its own).

    Started by name, like ``mes-bridge serve`` (the shell never imports the HTTP adapter): the app builds its own
    services from the same settings, so it works on the demo's database."""

    def __init__(self, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, log_level="critical",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-api", daemon=True)
        self.host, self.port = host, port

    def start(self, timeout_s: float = 30.0) -> None:  # float-ok: seconds
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise DemoError(f"error: the API could not listen on {self.host}:{self.port} (port in use? "
                                "choose another with --port)")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


async def start_idle(configs: Sequence[MachineConfig]) -> list[tuple[MachineConfig, Any]]:
    """One simulator per machine, serving but not producing yet."""
    started: list[tuple[MachineConfig, Any]] = []
    try:
        for config in configs:
            if config.protocol == "modbus":
                from mes_bridge.simulators.modbus_sim import ModbusSimulator

                sim: Any = ModbusSimulator([config])
            else:
                from mes_bridge.simulators.opcua_sim import OpcUaSimulator

                sim = OpcUaSimulator([config])
            try:
                await sim.start(produce=False)
            except OSError as exc:
                raise DemoError(f"error: the simulator of {config.machine} cannot listen on {config.endpoint} "
                                f"({exc.strerror or exc}); another program holds the port? (--config DIR takes "
                                "machine descriptions with other endpoints)") from None
            started.append((config, sim))
    except BaseException:
        await stop_simulators([sim for _, sim in started])
        raise
    return started


async def wait_listening(endpoint: str, timeout_s: float = 30.0) -> None:  # float-ok: seconds
    """Until a TCP connection to the endpoint's host and port succeeds."""
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4840
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise DemoError(f"error: the simulator at {endpoint} does not accept connections") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def quiet() -> None:
    """Start-up connection errors and per-request logs are not for the demo's audience."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def snapshot(services: Services, configs: Sequence[MachineConfig], health: dict[str, Any]) -> dict[str, Any]:
    """Per machine: its operation's good, scrap and rework on the live order and the WIP value waiting there;
    plant totals. Read from the database, i.e. what the event path applied."""
    with services.read() as conn:
        view = reports.order_view(conn, LIVE_ORDER) or {"operations": []}
        by_op = reports.wip_value(conn, by="operation")
        total = reports.wip_value(conn).total
        scrap = reports.scrap_loss(conn)
        fg = [r for r in onhand(conn, LIVE_ITEM) if r.qty]
    ops = {o["operation"]: o for o in view["operations"]}
    wip = {int(r.key["operation"]): r.value for r in by_op.rows if r.key["work_order"] == LIVE_ORDER}
    machines = []
    for config in configs:
        op = config.inspection.operation if config.inspection is not None else config.operation
        row = ops.get(op, {})
        state = health.get("machines", {}).get(config.machine, {})
        machines.append({"machine": config.machine, "protocol": config.protocol, "work_center": config.work_center,
                         "operation": op, "connected": bool(state.get("connected")),
                         "good": row.get("completed_good", "0"), "scrap": row.get("scrapped", "0"),
                         "rework": row.get("reworked", "0"), "wip": wip.get(op, ZERO) if op is not None else ZERO})
    return {"machines": machines, "wip_total": total, "scrap_loss": scrap,
            "fg_qty": sum((r.qty for r in fg), Decimal(0)), "fg_value": sum((r.value for r in fg), Decimal(0))}


def render_table(state: dict[str, Any], elapsed: float, *, starting: bool = False) -> Any:  # float-ok: seconds
    from rich.table import Table

    table = Table(title=f"{LIVE_ORDER} ({LIVE_ITEM}) live, t+{elapsed:.0f}s  (Ctrl-C stops)")
    for name, justify in (("machine", "left"), ("link", "left"), ("work center", "left"), ("op", "right"),
                          ("good", "right"), ("scrap", "right"), ("rework", "right"), ("WIP waiting", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for m in state["machines"]:
        link = f"{m['protocol']} {'starting' if starting else 'up' if m['connected'] else 'down'}"
        table.add_row(m["machine"], link, m["work_center"], str(m["operation"]), m["good"], m["scrap"],
                      m["rework"], fmt(m["wip"]))
    table.caption = (f"WIP (all orders) {fmt(state['wip_total'])} | scrap loss {fmt(state['scrap_loss'])} | "
                     f"{LIVE_ITEM} in stock {fmt_qty(state['fg_qty'])} worth {fmt(state['fg_value'])}")
    return table


def status_line(state: dict[str, Any], elapsed: float, outcomes: dict[str, int]) -> str:  # float-ok: seconds
    """The table as one line, for output that is not a terminal (logs, pipes, tests)."""
    per_machine = " ".join(f"{m['machine']} good {m['good']} scrap {m['scrap']} rework {m['rework']} "
                           f"WIP {fmt(m['wip'])};" for m in state["machines"])
    return (f"  t+{elapsed:5.1f}s {per_machine} WIP total {fmt(state['wip_total'])} | "
            f"scrap loss {fmt(state['scrap_loss'])} | " + " ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


async def run_live(services: Services, data_dir: Path, echo: Echo, *, config_dir: Path = SHIPPED_CONFIGS,
                   duration: float = 0, every: float = 1.0, stagger: float = 3.0,  # float-ok: seconds
                   api: ApiThread | None = None) -> None:
    """Simulators + collectors (+ the API thread, stopped here too) until Ctrl-C / SIGTERM or ``duration``."""
    from rich.console import Console
    from rich.live import Live

    configs = live_configs(config_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ordered = sorted(configs, key=_routing_position)
    spool = Spool(data_dir / "demo-spool.db")
    collector = Collector(configs, spool, InProcessForwarder(services), scans=DatabaseScanFeed(services))
    simulators: list[tuple[MachineConfig, Any]] = []
    running: asyncio.Task[None] | None = None
    console = Console()
    echo("  machines: " + ", ".join(f"{c.machine} ({c.protocol} {c.endpoint}, {c.work_center})" for c in ordered))
    started = loop.time()
    # The table shows at once; the machines come up behind it (an asyncua server takes seconds to start).
    bring_up = asyncio.create_task(_bring_up(ordered, simulators, collector, stop))
    produce_at: dict[int, float] | None = None  # float-ok: deadlines, once the machines are up
    try:
        with Live(console=console, refresh_per_second=2, transient=False) if console.is_terminal else _NoLive() as live:
            last_line = float("-inf")  # float-ok: a time
            while not stop.is_set():
                now = loop.time()
                if produce_at is None and bring_up.done():
                    running = bring_up.result()  # a simulator that could not listen raises its DemoError here
                    produce_at = {id(sim): now + i * stagger for i, (_, sim) in enumerate(simulators)}
                for _, sim in simulators:
                    if produce_at is not None and produce_at.get(id(sim), float("inf")) <= now:  # float-ok
                        sim.start_production()  # machines start in routing order: each finds parts waiting
                        del produce_at[id(sim)]
                health = collector.metrics.health()
                state = await asyncio.to_thread(snapshot, services, ordered, health)
                elapsed = now - started
                if console.is_terminal:
                    live.update(render_table(state, elapsed, starting=produce_at is None))
                elif now - last_line >= 2.0:
                    echo(status_line(state, elapsed, health["forwarder"]["outcomes"]))
                    last_line = now
                if duration and elapsed >= duration:
                    stop.set()
                await sleep_or_stop(stop, every)
    finally:
        stop.set()
        if not bring_up.done():
            bring_up.cancel()
        with contextlib.suppress(asyncio.CancelledError, DemoError):
            running = running or await bring_up
        if running is not None:
            await running
        await stop_simulators([sim for _, sim in simulators])
        spool.close()
        if api is not None:
            await asyncio.to_thread(api.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    echo(f"  stopped cleanly; spool kept in {data_dir / 'demo-spool.db'}; `mes-bridge demo` again resumes")


async def _bring_up(ordered: Sequence[MachineConfig], simulators: list[tuple[MachineConfig, Any]],
                    collector: Collector, stop: asyncio.Event) -> asyncio.Task[None]:
    """The simulators (idle), then -- once every one accepts connections -- the collectors."""
    simulators += await start_idle(ordered)
    for config in ordered:
        await wait_listening(config.endpoint)
    return asyncio.create_task(collector.run(stop))


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, _renderable: Any) -> None:
        return None


def _routing_position(config: MachineConfig) -> int:
    if config.inspection is not None:
        return config.inspection.operation
    return config.operation if config.operation is not None else 0
