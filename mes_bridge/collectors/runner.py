"""Runs a collector: one supervised client task per machine, one forward loop, until told to stop.

Also the process entry point (``python -m mes_bridge.collectors.runner``), used by ``mes-bridge collect``
and by the kill -9 tests.

Invariants:
- A client that crashes is logged, recorded and restarted after a backoff; it never takes the other
  machines or the forwarder down with it.
- On stop, clients end first (no new readings), then the forwarder makes one last drain attempt; whatever
  is left stays in the spool for the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mes_bridge.collectors.core import MachineSession
from mes_bridge.collectors.scan_feed import DatabaseScanFeed, ScanFeed, follow_scans, load_scans
from mes_bridge.forwarder import Forwarder, backoff_delay, forward_loop, sleep_or_stop
from mes_bridge.metrics import CollectorMetrics
from mes_bridge.plc_config import MachineConfig, load_configs
from mes_bridge.spool import DEFAULT_CAPACITY, Spool
from mes_common.settings import LOG_FORMAT

log = logging.getLogger("mes_bridge.collectors.runner")


class ProtocolClient(Protocol):
    async def run_many(self, sessions: Sequence[MachineSession], stop: asyncio.Event) -> None: ...


def client_for(configs: Sequence[MachineConfig], **options: Any) -> ProtocolClient:
    """The protocol client for a group of machines (``connection_groups``); each protocol's library is imported
    only when used."""
    if configs[0].protocol == "modbus":
        from mes_bridge.collectors.modbus import ModbusClient

        return ModbusClient(*configs, **options)
    from mes_bridge.collectors.opcua import OpcUaClient

    return OpcUaClient(*configs, **options)


def connection_groups(configs: Sequence[MachineConfig]) -> list[list[MachineConfig]]:
    """Machines that share one connection: OPC UA machines of one endpoint with equal security and connection
    settings (one session and subscription per server instead of per machine); Modbus devices of one endpoint
    (one TCP connection, one poll loop per device)."""
    groups: dict[Any, list[MachineConfig]] = {}
    for config in configs:
        groups.setdefault(_connection_key(config), []).append(config)
    return list(groups.values())


def _connection_key(config: MachineConfig) -> Any:
    if config.protocol == "modbus":
        from mes_bridge.collectors.modbus import connection_key as modbus_key

        return ("modbus", modbus_key(config))
    from mes_bridge.collectors.opcua import connection_key as opcua_key

    return ("opcua", opcua_key(config))


class Collector:
    """Sessions and clients for ``configs`` sharing one spool, one forwarder and one metrics registry."""

    def __init__(self, configs: Sequence[MachineConfig], spool: Spool, forwarder: Forwarder,
                 metrics: CollectorMetrics | None = None, *, batch_size: int = 500,
                 client_options: dict[str, dict[str, Any]] | None = None, scans: ScanFeed | None = None,
                 scan_interval_s: float = 1.0,  # float-ok: seconds
                 health_url: tuple[str, str] | None = None) -> None:
        self.spool = spool
        # (API base URL, token): post the machines' health there every few seconds (HTTP-forwarding collectors).
        self.health_url = health_url
        self.forwarder = forwarder
        self.scans = scans
        self.scan_interval_s = scan_interval_s
        self.metrics = metrics or CollectorMetrics(spool)
        self.batch_size = batch_size
        self.sessions = {c.machine: MachineSession(c, spool, self.metrics) for c in configs}
        self.client_options = client_options or {}
        for name in self.sessions:
            self.metrics.add_machine(name)

    async def run(self, stop: asyncio.Event) -> None:
        clients_stop = asyncio.Event()
        if self.scans is not None:
            await load_scans(self.scans, self.sessions)
        groups = connection_groups([s.config for s in self.sessions.values()])
        clients = [asyncio.create_task(self._supervise([self.sessions[c.machine] for c in group], clients_stop),
                                       name=f"collector {group[0].endpoint}") for group in groups]
        if self.scans is not None:
            clients.append(asyncio.create_task(
                follow_scans(self.scans, self.sessions, clients_stop, self.scan_interval_s), name="scans"))
        if self.health_url is not None:
            from mes_bridge.collectors.http_link import report_health

            base, token = self.health_url
            clients.append(asyncio.create_task(report_health(base, token, self.metrics, clients_stop),
                                               name="health reports"))
        forward_stop = asyncio.Event()
        forwarding = asyncio.create_task(
            forward_loop(self.spool, self.forwarder, forward_stop, batch_size=self.batch_size,
                         observer=self.metrics), name="forwarder")
        try:
            await stop.wait()
        finally:
            clients_stop.set()
            await asyncio.gather(*clients, return_exceptions=True)
            forward_stop.set()
            await asyncio.gather(forwarding, return_exceptions=True)

    async def _supervise(self, sessions: Sequence[MachineSession], stop: asyncio.Event) -> None:
        attempt = 0
        protocol = sessions[0].config.protocol
        while not stop.is_set():
            try:
                client = client_for([s.config for s in sessions], **self.client_options.get(protocol, {}))
                await client.run_many(sessions, stop)
                return
            except Exception as exc:  # a crashed client must not take the other connections down
                attempt += 1
                for session in sessions:
                    session.record("client-crashed", f"{type(exc).__name__}: {exc}")
                log.exception("%s: client crashed", ", ".join(s.machine for s in sessions))
                await sleep_or_stop(stop, backoff_delay(attempt, 0.5, 30.0))


@dataclass(frozen=True)
class RunOptions:
    """What a collector process runs with (``mes-bridge collect`` builds it from its options, ``main`` from argv)."""

    config: Path
    spool: Path | None = None  # default: <data dir>/spool.db
    capacity: int = DEFAULT_CAPACITY
    sink: Path | None = None  # test sink instead of a service
    url: str | None = None  # HTTP forwarding to this base URL
    token: str | None = None
    database: str | None = None  # in-process forwarding into this database (default from settings)
    machines: tuple[str, ...] = ()
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    poll_ms: int | None = None
    switch_interval: float | None = None  # float-ok: seconds; see InProcessForwarder
    # In-process: seconds between builds of the reports' checkpoints (0: this process never builds them; None: the
    # builder's default period, ``mes_bridge.checkpoint_worker.EVERY_S``).
    checkpoint_every: float | None = None  # float-ok: seconds


def build_forwarder(options: RunOptions) -> Forwarder:
    from mes_bridge.forwarder import HttpForwarder, InProcessForwarder, RecordingSink

    if options.sink:
        return RecordingSink(options.sink)
    if options.url:
        return HttpForwarder(options.url, options.token or "")
    from mes_bridge.bootstrap import Services
    from mes_common.db import make_engine
    from mes_common.settings import Settings

    engine = make_engine(options.database or Settings().resolved_database_url())
    return InProcessForwarder(Services(engine), switch_interval=options.switch_interval)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mes_bridge.collectors.runner", description=__doc__)
    p.add_argument("--config", required=True, type=Path, help="folder of plc_configs/*.yaml")
    p.add_argument("--spool", type=Path, help="spool file (default: <data dir>/spool.db)")
    p.add_argument("--capacity", type=int, default=DEFAULT_CAPACITY, help="spool capacity in events")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--sink", type=Path, help="test sink: a SQLite file recording events (no service)")
    target.add_argument("--url", help="central service base URL (HTTP forwarding)")
    target.add_argument("--database", help="database URL (in-process forwarding; default from settings)")
    p.add_argument("--token", help="API token for --url")
    p.add_argument("--machine", action="append", default=[], help="only these machines (repeatable)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (0.0.0.0 in containers)")
    p.add_argument("--poll-ms", type=int, help="override every Modbus machine's poll interval (tests)")
    p.add_argument("--switch-interval", type=float, help="in-process forwarding: the interpreter's switch interval "
                   "(seconds) while a batch is applied (default: left alone)")
    p.add_argument("--checkpoint-every", type=float, help="in-process forwarding: seconds between builds of the "
                   "reports' checkpoints (0: never; default 60)")
    return p


async def run_collector(configs: Sequence[MachineConfig], spool: Spool, forwarder: Forwarder,
                        stop: asyncio.Event, metrics_port: int | None = None, metrics_host: str = "127.0.0.1",
                        checkpoint_every: float | None = None) -> None:  # float-ok: seconds
    metrics = CollectorMetrics(spool)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    from mes_bridge.collectors.http_link import HttpScanFeed
    from mes_bridge.forwarder import HttpForwarder, InProcessForwarder

    health_url = (forwarder.base_url, forwarder.token) if isinstance(forwarder, HttpForwarder) else None
    scans = scan_feed_for(forwarder)
    collector = Collector(configs, spool, forwarder, metrics, scans=scans, health_url=health_url)
    try:
        if isinstance(forwarder, InProcessForwarder) and checkpoint_every != 0:
            # In-process: this process applies the events, so it keeps the reports' checkpoints up to date too.
            from mes_bridge.checkpoint_worker import EVERY_S, keep_checkpoints

            every = EVERY_S if checkpoint_every is None else checkpoint_every
            await asyncio.gather(collector.run(stop), keep_checkpoints(forwarder.services.engine, stop, every))
        else:
            await collector.run(stop)
    finally:
        if isinstance(scans, HttpScanFeed):
            scans.close()


def scan_feed_for(forwarder: Forwarder) -> ScanFeed | None:
    """In-process collectors read the scanned work orders from the service's database, HTTP-forwarding ones from
    the API (``GET /machines/{m}/work-order``); a test sink has none."""
    from mes_bridge.collectors.http_link import HttpScanFeed
    from mes_bridge.forwarder import HttpForwarder, InProcessForwarder

    if isinstance(forwarder, InProcessForwarder):
        return DatabaseScanFeed(forwarder.services)
    if isinstance(forwarder, HttpForwarder):
        return HttpScanFeed(forwarder.base_url, forwarder.token)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mes_bridge.collectors.runner ARGS``: argparse exits 2 on a usage error; ``run`` then."""
    args = parser().parse_args(argv)
    return run(RunOptions(
        config=args.config, spool=args.spool, capacity=args.capacity, sink=args.sink, url=args.url, token=args.token,
        database=args.database, machines=tuple(args.machine), metrics_port=args.metrics_port,
        metrics_host=args.metrics_host, poll_ms=args.poll_ms, switch_interval=args.switch_interval,
        checkpoint_every=args.checkpoint_every,
    ))


def run(options: RunOptions) -> int:
    """Collect until SIGINT / SIGTERM; 0 when stopped, 1 when the machine descriptions or the spool are refused."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # asyncua logs a traceback at ERROR for every lost server; the collector records the gap itself.
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    from mes_common.errors import DomainError

    try:
        configs = load_configs(options.config)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    if options.machines:
        unknown = sorted(set(options.machines) - {c.machine for c in configs})
        if unknown:
            print(f"error: machine {unknown[0]!r} is not described in {options.config}", file=sys.stderr)
            return 1
        configs = [c for c in configs if c.machine in options.machines]
    if options.poll_ms:
        configs = [c.model_copy(update={"poll_interval_ms": options.poll_ms}) for c in configs]
    spool_path = options.spool
    if spool_path is None:
        from mes_common.settings import Settings

        spool_path = Settings().data_dir / "spool.db"
    try:
        spool = Spool(spool_path, capacity=options.capacity)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    forwarder = build_forwarder(options)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("collecting from %s into spool %s", ", ".join(c.machine for c in configs), spool_path)
        try:
            await run_collector(configs, spool, forwarder, stop, options.metrics_port, options.metrics_host,
                                options.checkpoint_every)
        finally:
            closing = getattr(forwarder, "aclose", None)
            if closing is not None:
                await closing()

    try:
        asyncio.run(_run())
    finally:
        spool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
