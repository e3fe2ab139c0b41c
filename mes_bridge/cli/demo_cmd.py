"""``mes-bridge demo``: the example plant on the embedded database; grows with every capability."""

from __future__ import annotations

import typer

from mes_bridge import demo, schema
from mes_bridge.cli.common import domain_errors, services_from_settings


def register(app: typer.Typer) -> None:
    """Add the demo command to the main app."""

    @app.command("demo")
    def run_demo(
        live: bool = typer.Option(True, help="run the simulated machines and collectors after the worked example"),
        duration: float = typer.Option(0, help="seconds the live part runs (0 = until Ctrl-C)"),
    ) -> None:
        """Run SPEC.md's example plant: schema, master data, stock, the worked example, then live machines."""
        with services_from_settings() as services, domain_errors():
            echo = typer.echo
            echo(f"mes-bridge demo on {services.engine.url.render_as_string(hide_password=True)}")
            schema.upgrade(services.engine)
            echo("1. Example plant (idempotent import):")
            demo.load_plant(services, echo)
            echo("   On-hand stock:")
            demo.show_stock(services, echo)
            demo.show_rollup(services, echo)
            echo("2. Work order WO-1 and SPEC.md's worked example, event by event:")
            demo.worked_example(services, echo)
            echo("   On-hand stock after the example:")
            demo.show_stock(services, echo)
            if not live:
                return
            import asyncio

            from mes_bridge import demo_live
            from mes_bridge.cli.common import settings

            echo("3. Live: simulated machines -> collectors -> spool -> the one event path:")
            demo_live.prepare(services, echo)
            asyncio.run(demo_live.run_live(services, settings().data_dir, echo, duration=duration))
