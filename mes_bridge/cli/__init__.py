"""The ``mes-bridge`` command line: one Typer app, one sub-app per area (see SPEC.md "Interfaces")."""

from __future__ import annotations

import typer

from mes_bridge.cli import (
    bom_cmds,
    certs_cmds,
    collect_cmds,
    db_cmds,
    demo_cmd,
    ledger_cmds,
    report_cmds,
    routing_cmds,
    serve_cmds,
    wip_cmds,
)

app = typer.Typer(
    name="mes-bridge",
    help="Shop-floor execution: machine and terminal events to exact WIP quantities, costs and stock.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_cmds.app, name="db")
app.add_typer(ledger_cmds.app, name="ledger")
app.add_typer(bom_cmds.app, name="bom")
app.add_typer(routing_cmds.app, name="routing")
app.add_typer(wip_cmds.wo_app, name="wo")
app.add_typer(wip_cmds.events_app, name="events")
app.add_typer(wip_cmds.wip_app, name="wip")
app.add_typer(wip_cmds.journal_app, name="journal")
app.add_typer(certs_cmds.app, name="certs")
app.add_typer(report_cmds.reports_app, name="reports")
collect_cmds.register(app)
demo_cmd.register(app)
serve_cmds.register(app)


def main() -> None:
    app()
