"""``mes-bridge collect`` and ``mes-bridge simulate``: collectors and simulated machines.

Both read the machine descriptions of a ``plc_configs`` folder and run until interrupted (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from mes_bridge.cli.common import domain_errors


def _run_until_signalled(work: object) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await work(stop)  # type: ignore[operator]

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    """Add the collector commands to the main app."""

    @app.command("collect")
    def collect(
        config: Annotated[Path, typer.Option("--config", help="folder of machine descriptions (*.yaml)")] = Path(
            "plc_configs"),
        spool: Annotated[Path | None, typer.Option(help="spool file (default: <data dir>/spool.db)")] = None,
        url: Annotated[str | None, typer.Option(help="forward over HTTP to this service base URL")] = None,
        token: Annotated[str | None, typer.Option(help="API token (collector role) for --url")] = None,
        machine: Annotated[list[str] | None, typer.Option(help="only these machines (repeatable)")] = None,
        metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus metrics on this port")] = None,
        metrics_host: Annotated[str, typer.Option(help="address for --metrics-port (0.0.0.0 in containers)")] = (
            "127.0.0.1"),
        capacity: Annotated[int | None, typer.Option(help="spool capacity in events")] = None,
        switch_interval: Annotated[float | None, typer.Option(
            help="in-process forwarding: the interpreter's switch interval in seconds while a batch is applied, "
                 "e.g. 0.0001 (default: left alone)")] = None,
        checkpoint_every: Annotated[float | None, typer.Option(
            envvar="MES_BRIDGE_CHECKPOINT_EVERY", min=0,
            help="in-process forwarding: seconds between builds of the reports' daily checkpoints (0: this "
                 "process never builds; default 60)")] = None,
    ) -> None:
        """Read the machines' counters and forward their events (in-process to the database, or --url)."""
        from mes_bridge.collectors import runner
        from mes_bridge.spool import DEFAULT_CAPACITY

        if url and not token:
            raise typer.BadParameter("--url needs --token (a collector token)", param_hint="--token")
        options = runner.RunOptions(
            config=config, spool=spool, url=url, token=token, machines=tuple(machine or ()),
            metrics_port=metrics_port, metrics_host=metrics_host, switch_interval=switch_interval,
            capacity=capacity or DEFAULT_CAPACITY, checkpoint_every=checkpoint_every,
        )
        code = runner.run(options)
        if code:
            raise typer.Exit(code)

    @app.command("simulate")
    def simulate(
        config: Annotated[Path, typer.Option("--config", help="folder of machine descriptions (*.yaml)")] = Path(
            "plc_configs"),
        machine: Annotated[list[str] | None, typer.Option(help="only these machines (repeatable)")] = None,
    ) -> None:
        """Serve simulated machines (OPC UA and Modbus servers) producing parts at their configured rates."""
        from mes_bridge.plc_config import load_configs
        from mes_bridge.simulators import run_simulators

        with domain_errors():
            configs = load_configs(config)
            if machine:
                configs = [c for c in configs if c.machine in machine]
            _run_until_signalled(lambda stop: run_simulators(configs, stop))
