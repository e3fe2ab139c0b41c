"""``mes-bridge routing ...``: import work centers and routing operations, show routings and work centers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from mes_bridge.cli.bom_cmds import table
from mes_bridge.cli.common import domain_errors, fail, services_from_settings
from mes_common.money import fmt_qty
from routing import repository
from wip_costing.commands import ImportOperations, ImportWorkCenters

app = typer.Typer(help="Work centers and versioned routings.", no_args_is_help=True)
import_app = typer.Typer(help="Import work centers or routing operations from CSV (all or nothing).",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")

DryRun = Annotated[bool, typer.Option("--dry-run", help="say what the import would change; write nothing")]


@import_app.command("work-centers")
def import_work_centers(
    file: Path,
    on: Annotated[str | None, typer.Option(
        "--date", help="changed rates apply from this date (default today); orders released before keep theirs")
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """code,name,labor_rate,machine_rate,energy_tariff,cost_center[,machines,terminals,supply_location].

    Rates are versioned: a changed rate starts a new version; machines and terminals are linked, never unlinked."""
    try:
        effective = date.fromisoformat(on) if on else None
    except ValueError:
        raise fail(f"error: --date {on!r} is not a date (YYYY-MM-DD)") from None
    with domain_errors(), services_from_settings() as services:
        result = services.handle(ImportWorkCenters(source=file, effective=effective, dry_run=dry_run))
    typer.echo(f"imported {len(result.written)} work center(s): {', '.join(result.written)}; "
               f"{len(result.unchanged)} unchanged" + (" (dry run: nothing written)" if dry_run else ""))
    for change in result.changes:
        typer.echo(f"  {change}")


@import_app.command("operations")
def import_operations(
    file: Path,
    supersede: Annotated[bool, typer.Option(
        "--supersede", help="end-date an earlier released revision still open when a new one starts")] = False,
    dry_run: DryRun = False,
) -> None:
    """item,revision,valid_from,valid_to,operation,work_center,setup_min,run_min_per_unit,std_kwh_per_unit,
    yield_pct,rework_to,quality_standard[,after]; every revision is released."""
    with domain_errors(), services_from_settings() as services:
        result = services.handle(ImportOperations(source=file, supersede=supersede, dry_run=dry_run))
    for name in result.written:
        typer.echo(f"released routing {name}")
    for line in result.changes:
        typer.echo(line)
    for name in result.unchanged:
        typer.echo(f"unchanged routing {name} (already released, identical)")
    if dry_run:
        typer.echo(f"{len(result.written)} to release, {len(result.changes)} superseded, {len(result.unchanged)} "
                   "unchanged (dry run: nothing written)")


@app.command()
def show(
    item: str,
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default today)")] = None,
    revision: Annotated[str | None, typer.Option("--revision")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The routing of ITEM effective on a date (or a given revision), in flow order."""
    try:
        day = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError:
        raise fail(f"error: --as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        version = (repository.get_routing(conn, item, revision) if revision
                   else repository.effective_routing(conn, item, day))
    if version is None:
        raise fail(f"error: no released routing of {item} is effective on {day.isoformat()}")
    ops = version.in_order()
    if as_json:
        typer.echo(json.dumps(version.to_json(), indent=2))
        return
    typer.echo(f"routing {version.item} rev {version.revision} ({version.state.value})")
    headers = ("op", "after", "work center", "setup", "run/unit", "kWh/unit", "yield%", "rework to", "quality")
    typer.echo(table(headers, [
        (op.number, ";".join(map(str, version.predecessors(op.number))), op.work_center, fmt_qty(op.setup_min),
         fmt_qty(op.run_min_per_unit), fmt_qty(op.std_kwh_per_unit), fmt_qty(op.yield_pct), op.rework_to,
         op.quality_standard)
        for op in ops
    ]))


@app.command("work-centers")
def list_work_centers(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every work center with its rates, cost center, machines and terminals."""
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        centers = repository.work_centers(conn)
    if as_json:
        typer.echo(json.dumps({"rows": [
            {"code": wc.code, "name": wc.name, "labor_rate": str(wc.labor_rate), "machine_rate": str(wc.machine_rate),
             "energy_tariff": str(wc.energy_tariff), "cost_center": wc.cost_center, "machines": list(wc.machines),
             "terminals": list(wc.terminals), "supply_location": wc.supply_location}
            for wc in centers.values()
        ]}, indent=2))
        return
    typer.echo(table(("code", "name", "labor/h", "machine/h", "tariff/kWh", "cost center", "machines", "terminals"), [
        (wc.code, wc.name, fmt_qty(wc.labor_rate), fmt_qty(wc.machine_rate), fmt_qty(wc.energy_tariff),
         wc.cost_center, ";".join(wc.machines), ";".join(wc.terminals))
        for wc in centers.values()
    ]))
