"""``mes-bridge reports ...``: upkeep of what the reports read."""

from __future__ import annotations

from typing import Annotated

import typer

from mes_bridge.cli.common import engine_from_settings, fail

reports_app = typer.Typer(help="Report upkeep (balance checkpoints).", no_args_is_help=True)


@reports_app.command("checkpoint")
def checkpoint(
    wait: Annotated[float, typer.Option(help="seconds to wait for open transactions (PostgreSQL)")] = 30.0,
) -> None:
    """Build the daily balance checkpoints of the cost journal and the stock ledger (every complete day with
    lines, and corrections for lines that arrived back-dated). Safe while events arrive; ``mes-bridge collect``
    (in-process) runs it every minute."""
    from wip_costing.checkpoints import refresh_all

    with engine_from_settings() as engine:
        results = refresh_all(engine, wait_seconds=wait)
    for result in results:
        if result.skipped:
            raise fail(f"{result.source}: not built: {result.skipped}")
        days = f"{len(result.days)} days" + (f" ({result.days[0]} .. {result.days[-1]})" if result.days else "")
        print(f"{result.source}: {days}, {result.corrections} corrections, through {result.through_id}")
