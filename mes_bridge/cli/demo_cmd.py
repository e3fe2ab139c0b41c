"""``mes-bridge demo``: the whole product in one command, on the embedded database by default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mes_bridge import demo, schema
from mes_bridge.bootstrap import Services
from mes_bridge.cli.common import domain_errors, services_from_settings, settings


def register(app: typer.Typer) -> None:
    """Add the demo command to the main app."""

    @app.command("demo")
    def run_demo(
        live: Annotated[bool, typer.Option(help="after the worked example: the API and its pages, simulated "
                                                "machines and collectors, and a live table until Ctrl-C")] = True,
        port: Annotated[int, typer.Option(help="TCP port of the API and its pages (live part)")] = 8000,
        host: Annotated[str, typer.Option(help="address the API listens on (live part)")] = "127.0.0.1",
        duration: Annotated[float, typer.Option(help="seconds the live part runs (0 = until Ctrl-C)")] = 0,
        config: Annotated[Path | None, typer.Option(help="machine descriptions for the live part (default: the "
                                                         "shipped plc_configs/)")] = None,
        setup: Annotated[bool, typer.Option("--setup", help="the scripted part and the live order's stock and "
                                                            "release, then exit (docker's set-up runs this)")] = False,
    ) -> None:
        """Run SPEC.md's example plant: schema, master data, stock, the worked example, then live machines."""
        with services_from_settings() as services, domain_errors():
            echo = typer.echo
            echo(f"mes-bridge demo on {services.engine.url.render_as_string(hide_password=True)}")
            schema.upgrade(services.engine)
            echo("1. Example plant and a second product, FG-HINGE (idempotent import):")
            demo.load_plant(services, echo)
            demo.load_plant(services, echo, demo.SECOND_PRODUCT)
            echo("   On-hand stock:")
            demo.show_stock(services, echo)
            demo.show_rollup(services, echo)
            demo.show_rollup(services, echo, "FG-HINGE")
            echo("2. Work order WO-1 and SPEC.md's worked example, event by event:")
            demo.worked_example(services, echo)
            echo("   On-hand stock after the example:")
            demo.show_stock(services, echo)
            if setup:
                from mes_bridge import demo_live

                echo("3. The live order for simulated machines:")
                demo_live.prepare(services, echo)
                return
            if not live:
                return
            _live(services, echo, host, port, duration, config)


def _live(services: Services, echo: demo.Echo, host: str, port: int, duration: float,  # float-ok: seconds
          config: Path | None) -> None:
    import asyncio

    from mes_bridge import demo_live

    demo_live.quiet()
    data_dir = settings().data_dir
    config_dir = config or demo_live.default_configs()
    echo("3. Live: the API and its pages, simulated machines -> collectors -> spool -> the one event path:")
    demo_live.prepare(services, echo)
    token = demo.admin_token(services, data_dir)
    api = demo_live.ApiThread(host, port)
    api.start()
    base = f"http://{host}:{port}"
    echo(f"  terminal:  {base}/terminal")
    echo(f"  dashboard: {base}/dashboard")
    echo(f"  API docs:  {base}/docs")
    echo(f"token: {token}")
    echo(f"  (an admin token; e.g. curl -H 'Authorization: Bearer {token}' {base}/wip?by=operation)")
    asyncio.run(demo_live.run_live(services, data_dir, echo, duration=duration, api=api,
                                   config_dir=config_dir))
