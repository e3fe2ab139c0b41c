"""The live part of the demo: simulated machines and collectors feeding the example plant until stopped.

A second run resumes: stock top-up and the live work order are idempotent, the collectors' spool and counter
positions survive in the data directory, and the simulators' counters restarting at zero are recognised by the
collectors as a controller reset (a new counter epoch), so nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from ledger.commands import PostReceipt
from mes_bridge.bootstrap import Services
from mes_bridge.collectors.runner import Collector
from mes_bridge.collectors.scan_feed import DatabaseScanFeed
from mes_bridge.demo import RELEASE_DATE, Echo, figures
from mes_bridge.forwarder import InProcessForwarder, sleep_or_stop
from mes_bridge.plc_config import MachineConfig, load_configs
from mes_bridge.simulators import start_simulators, stop_simulators
from mes_bridge.spool import Spool
from wip_costing import reports
from wip_costing.commands import ReleaseOrder

LIVE_ORDER = "WO-2"
LIVE_QTY = Decimal(100_000)
SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "plc_configs"
# Enough raw material for the live order, received once (the idempotency key makes a re-run a no-op).
TOP_UP = (("RM-STEEL", Decimal(100_000), Decimal("400000.00")), ("RM-BOLT", Decimal(400_000), Decimal("40000.00")))


def prepare(services: Services, echo: Echo) -> None:
    moment = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    for item, qty, value in TOP_UP:
        services.handle(PostReceipt(key=f"demo:live-stock:{item}", item=item, qty=qty, to_location="STORES",
                                    value=value, actor="demo", reason="stock for the live demo order",
                                    effective_at=moment, reference=LIVE_ORDER))
    with services.read() as conn:
        known = reports.order_view(conn, LIVE_ORDER) is not None
    if not known:
        services.handle(ReleaseOrder(LIVE_ORDER, "FG-BRACKET", LIVE_QTY, on=RELEASE_DATE))
        echo(f"  released {LIVE_ORDER}: {LIVE_QTY} FG-BRACKET for the simulated machines")
    else:
        echo(f"  {LIVE_ORDER} already released (a previous run): resuming")


def live_configs(folder: Path) -> list[MachineConfig]:
    """The shipped machine descriptions, all working on the live order."""
    configs = []
    for config in load_configs(folder):
        simulation = config.simulation
        if simulation is not None:
            simulation = simulation.model_copy(update={"job": LIVE_ORDER})
        configs.append(config.model_copy(update={"simulation": simulation}))
    return configs


async def run_live(services: Services, data_dir: Path, echo: Echo, *, config_dir: Path = SHIPPED_CONFIGS,
                   duration: float = 0, every: float = 2.0, stagger: float = 4.0) -> None:  # float-ok: seconds
    """Simulators + collectors + in-process forwarding until Ctrl-C / SIGTERM (or ``duration`` seconds)."""
    configs = live_configs(config_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    spool = Spool(data_dir / "demo-spool.db")
    collector = Collector(configs, spool, InProcessForwarder(services), scans=DatabaseScanFeed(services))
    echo("  machines: " + ", ".join(f"{c.machine} ({c.protocol} {c.endpoint}, {c.work_center})" for c in configs))
    echo("  Ctrl-C stops everything; a second run resumes.")
    running = asyncio.create_task(collector.run(stop))
    started = loop.time()
    simulators: list[object] = []
    try:
        # Machines start in routing order, a few seconds apart, so each finds parts waiting from the one before.
        for i, config in enumerate(sorted(configs, key=_routing_position)):
            if i and not stop.is_set():
                await sleep_or_stop(stop, stagger)
            simulators += await start_simulators([config])
        while not stop.is_set():
            await sleep_or_stop(stop, every)
            elapsed = loop.time() - started
            health = collector.metrics.health()
            outcomes = health["forwarder"]["outcomes"]
            line = await asyncio.to_thread(figures, services)
            echo(f"  t+{elapsed:5.1f}s {line} | spool {health['spool']['depth']} | "
                 + " ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
            if duration and elapsed >= duration:
                stop.set()
    finally:
        stop.set()
        await running
        await stop_simulators(simulators)
        spool.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    echo(f"  stopped cleanly; {spool_path_note(data_dir)}")


def _routing_position(config: MachineConfig) -> int:
    if config.inspection is not None:
        return config.inspection.operation
    return config.operation if config.operation is not None else 0


def spool_path_note(data_dir: Path) -> str:
    return f"spool kept in {data_dir / 'demo-spool.db'}"
