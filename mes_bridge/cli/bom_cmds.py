"""``mes-bridge bom ...``: import, explode, where-used, diff, roll-up, net requirements, versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from bom import diff as bom_diff
from bom import planning, repository, whereused
from bom.explosion import Explosion, explode_cached
from bom.standard_cost import standard_cost
from mes_bridge.cli.common import domain_errors, fail, services_from_settings
from mes_common.csv_cells import Code, Date, Number
from mes_common.csv_validation import read_csv
from mes_common.money import fmt_qty

app = typer.Typer(help="Versioned BOMs: import, explode, where-used, diff, roll-up, net requirements.",
                  no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    csv = "csv"
    xlsx = "xlsx"
    json = "json"


AsOf = Annotated[str | None, typer.Option("--as-of", help="effective date YYYY-MM-DD (default: today)")]


def _as_of(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"error: --as-of {value!r} is not a date (YYYY-MM-DD)") from None


def _qty(value: str, option: str = "--qty") -> Decimal:
    try:
        qty = Decimal(value)
    except ArithmeticError:
        raise fail(f"error: {option} {value!r} is not a decimal number") from None
    if not qty.is_finite() or qty <= 0:
        raise fail(f"error: {option} must be a positive number, got {value!r}")
    return qty


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A plain text table; columns whose index is in ``right`` (amounts) are right-aligned."""
    text = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]
    lines = ["  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(r))
             .rstrip() for r in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _emit(records: list[dict[str, Any]], columns: Sequence[str], fmt: Format, output: Path | None,
          sheet: str) -> None:
    if fmt == Format.xlsx:
        if output is None:
            raise fail("error: --format xlsx needs --output FILE.xlsx")
        planning.export(records, columns, output, "xlsx", sheet)
        typer.echo(f"wrote {len(records)} rows to {output}")
    elif fmt == Format.csv:
        if output is None:
            typer.echo(planning.to_frame(records, columns).to_csv(index=False), nl=False)
        else:
            planning.export(records, columns, output, "csv")
            typer.echo(f"wrote {len(records)} rows to {output}")


Supersede = Annotated[bool, typer.Option(
    "--supersede", help="end-date an earlier released revision still open when a new one starts")]


@app.command("import")
def import_cmd(file: Path, supersede: Supersede = False, dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="say what the import would change; write nothing")] = False) -> None:
    """Import BOM lines (parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom
    [,fixed_qty]); every revision is released. All or nothing."""
    from wip_costing.commands import ImportBom

    with domain_errors(), services_from_settings() as services:
        result = services.handle(ImportBom(source=file, supersede=supersede, dry_run=dry_run))
    for line in result.lines(dry_run):
        typer.echo(line)


EXPLOSION_COLUMNS = ("level", "path", "component", "qty", "uom", "scrap_pct", "operation", "phantom", "fixed_qty")
TOTAL_COLUMNS = ("component", "qty", "uom", "made")


def explosion_records(exp: Explosion, text: bool = True) -> list[dict[str, Any]]:
    return [
        {"level": row.level, "path": " > ".join(exp.path(i)), "component": row.component,
         "qty": planning.qty_value(row.qty, text), "uom": row.uom, "scrap_pct": fmt_qty(row.scrap_pct),
         "operation": row.operation, "phantom": row.phantom, "fixed_qty": row.fixed_qty}
        for i, row in enumerate(exp.rows)
    ]


def total_records(exp: Explosion, text: bool = True) -> list[dict[str, Any]]:
    return [{"component": t.component, "qty": planning.qty_value(t.qty, text), "uom": t.uom, "made": t.made}
            for t in exp.totals()]


@app.command()
def explode(
    item: str,
    qty: Annotated[str, typer.Option("--qty", help="quantity of ITEM to explode")],
    as_of: AsOf = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv, xlsx (needs --output) or json")] = Format.table,
    output: Annotated[Path | None, typer.Option("--output", help="file for csv / xlsx")] = None,
    flat: Annotated[bool, typer.Option("--flat", help="csv: summarised totals instead of the indented rows")] = False,
) -> None:
    """Multi-level explosion of QTY x ITEM as of a date: indented rows and totals per component."""
    quantity, day = _qty(qty), _as_of(as_of)
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        exp = explode_cached(repository.explosion_index(conn, item, day, services.caches.bom), item, quantity, day)
    if fmt == Format.json:
        typer.echo(json.dumps({"item": exp.item, "revision": exp.revision, "qty": fmt_qty(exp.qty),
                               "as_of": day.isoformat(), "rows": explosion_records(exp),
                               "totals": total_records(exp)}, indent=2))
    elif fmt == Format.table:
        typer.echo(f"{exp.item} rev {exp.revision} x {fmt_qty(exp.qty)} as of {day.isoformat()}")
        typer.echo(table(("level", "component", "qty", "uom", "scrap%", "op", "phantom", "fixed"), [
            (("." * (r.level - 1)) + str(r.level), r.component, fmt_qty(r.qty), r.uom, fmt_qty(r.scrap_pct),
             r.operation, "yes" if r.phantom else "", "yes" if r.fixed_qty else "")
            for r in exp.rows
        ]))
        typer.echo("\ntotals")
        typer.echo(table(TOTAL_COLUMNS, [(t.component, fmt_qty(t.qty), t.uom, "made" if t.made else "bought")
                                         for t in exp.totals()]))
    elif fmt == Format.xlsx:
        if output is None:
            raise fail("error: --format xlsx needs --output FILE.xlsx")
        import pandas as pd

        with pd.ExcelWriter(output, engine="openpyxl") as writer:
            planning.to_frame(explosion_records(exp, False), EXPLOSION_COLUMNS).to_excel(
                writer, sheet_name="explosion", index=False)
            planning.to_frame(total_records(exp, False), TOTAL_COLUMNS).to_excel(
                writer, sheet_name="totals", index=False)
        typer.echo(f"wrote {len(exp.rows)} rows to {output}")
    elif flat:
        _emit(total_records(exp), TOTAL_COLUMNS, fmt, output, "totals")
    else:
        _emit(explosion_records(exp), EXPLOSION_COLUMNS, fmt, output, "explosion")


@app.command("where-used")
def where_used(
    item: str,
    as_of: AsOf = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every released parent that uses ITEM, level by level up to the top (as of a date)."""
    day = _as_of(as_of)
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        rows = whereused.where_used(repository.released_index(conn, services.caches.bom), item, day)
    if as_json:
        typer.echo(json.dumps({"item": item, "as_of": day.isoformat(), "rows": [
            {"level": r.level, "parent": r.parent, "revision": r.revision, "component": r.component,
             "qty_per": fmt_qty(r.qty_per), "operation": r.operation, "phantom": r.phantom,
             "qty": fmt_qty(r.qty), "path": list(r.path)}
            for r in rows
        ]}, indent=2))
        return
    if not rows:
        typer.echo(f"{item} is not used in any BOM released and effective on {day.isoformat()}")
        return
    typer.echo(table(("level", "parent", "rev", "uses", "qty_per", "op", "qty of " + item), [
        (("." * (r.level - 1)) + str(r.level), r.parent, r.revision, r.component, fmt_qty(r.qty_per), r.operation,
         fmt_qty(r.qty))
        for r in rows
    ]))


@app.command()
def diff(
    item: str, rev_a: str, rev_b: str, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Lines added, removed and changed from revision REV_A to REV_B of ITEM."""
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        result = bom_diff.diff(repository.get_bom(conn, item, rev_a), repository.get_bom(conn, item, rev_b))

    def show(value: Any) -> Any:
        if isinstance(value, Decimal):
            return fmt_qty(value)
        if isinstance(value, date):
            return value.isoformat()
        return value if value is None or isinstance(value, bool | int) else str(value)

    def line(x: Any) -> dict[str, Any]:
        return {f: show(getattr(x, f)) for f in ("component", *bom_diff.FIELDS)}

    if as_json:
        typer.echo(json.dumps({
            "item": item, "from": rev_a, "to": rev_b,
            "header": {k: [show(a), show(b)] for k, (a, b) in result.header.items()},
            "added": [line(x) for x in result.added], "removed": [line(x) for x in result.removed],
            "changed": [{"component": c.component, "operation": c.operation,
                         "changes": {k: [show(a), show(b)] for k, (a, b) in c.changes.items()}}
                        for c in result.changed],
        }, indent=2))
        return
    typer.echo(f"BOM {item}: rev {rev_a} -> rev {rev_b}")
    for name, (a, b) in result.header.items():
        typer.echo(f"  {name}: {show(a)} -> {show(b)}")
    for x in result.added:
        typer.echo(f"+ {x.component} qty_per {fmt_qty(x.qty_per)} {x.uom} at op {x.operation}")
    for x in result.removed:
        typer.echo(f"- {x.component} qty_per {fmt_qty(x.qty_per)} {x.uom} at op {x.operation}")
    for c in result.changed:
        changes = ", ".join(f"{k} {show(a)} -> {show(b)}" for k, (a, b) in c.changes.items())
        typer.echo(f"~ {c.component}: {changes}")
    if result.empty:
        typer.echo("  no differences")


@app.command("rollup")
def rollup_cmd(
    item: str,
    as_of: AsOf = None,
    qty: Annotated[str, typer.Option("--qty", help="lot size (setup is spread over it)")] = "1",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Standard cost per unit: materials at ledger cost (made items rolled up) + routing conversion.

    Amounts are shown in cents (each rounded half up on its own), unit costs to at most 6 places."""
    quantity, day = _qty(qty), _as_of(as_of)
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        result = standard_cost(conn, item, day, quantity, boms_cache=services.caches.bom,
                               routings_cache=services.caches.routings)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    data = result.to_json()
    typer.echo(f"{item} standard cost per unit as of {day.isoformat()} (BOM rev {result.bom_revision}, "
               f"routing rev {result.routing_revision}, lot {fmt_qty(quantity)})")
    typer.echo(table(("component", "op", "qty/unit", "unit cost", "amount", "source"), [
        (m["component"], m["operation"], m["qty_per_unit"], m["unit_cost"], m["amount"], m["source"])
        for m in data["materials"]
    ], right=(2, 3, 4)))
    typer.echo("")
    typer.echo(table(("op", "labor", "machine", "energy", "setup", "total"), [
        (op, c["labor"], c["machine"], c["energy"], c["setup"], c["total"]) for op, c in data["per_operation"].items()
    ], right=(1, 2, 3, 4, 5)))
    typer.echo("")
    width = max(len(data[name]) for name in ("material", "labor", "machine", "energy", "total"))
    for name in ("material", "labor", "machine", "energy", "total"):
        typer.echo(f"{name:>9}: {data[name]:>{width}}")
    if result.missing_costs:
        typer.echo(f"warning: no ledger cost for {', '.join(result.missing_costs)} (counted at 0)")


PLAN_COLUMNS = (Code("item"), Number("qty", positive=True, places=6), Date("due"))
NEEDS_COLUMNS = (Code("item"), Number("qty", places=6))


@app.command()
def plan(
    file: Path,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv, xlsx (needs --output) or json")] = Format.table,
    output: Annotated[Path | None, typer.Option("--output")] = None,
    open_needs: Annotated[Path | None, typer.Option(
        "--open-needs", help="CSV item,qty of further open needs, ADDED to those of the open work orders "
                             "(with --no-wip: used instead of them)")] = None,
    no_wip: Annotated[bool, typer.Option(
        "--no-wip", help="ignore the open work orders in the database (only --open-needs, if given)")] = False,
    all_rows: Annotated[bool, typer.Option("--all", help="every component, not only shortages")] = False,
) -> None:
    """Net requirements of a plan (CSV item,qty,due): explode, net against on-hand stock and open needs.

    Open needs are what released and in-progress work orders will still draw from stores (from their frozen
    snapshots and progress); --open-needs adds quantities to them, --no-wip leaves the orders out."""
    from ledger.repository import get_items, onhand_by_item
    from wip_costing.planning_feed import open_component_needs

    with domain_errors():
        rows = [planning.PlanRow(str(r["item"]), r["qty"], r["due"]) for r in read_csv(file, PLAN_COLUMNS)]  # type: ignore[arg-type]
        extra: dict[str, Decimal] = {}
        if open_needs is not None:
            for r in read_csv(open_needs, NEEDS_COLUMNS, key=("item",)):
                extra[str(r["item"])] = r["qty"]  # type: ignore[assignment]
        with services_from_settings() as services, services.read() as conn:
            needs = {} if no_wip else open_component_needs(conn, services.caches.snapshots)
            for code, qty in extra.items():
                needs[code] = needs.get(code, Decimal(0)) + qty
            index = repository.released_index(conn, services.caches.bom)
            stock = onhand_by_item(conn)
            result = planning.net_requirements(index, rows, stock, needs)
            uoms = {code: item.uom for code, item in get_items(conn, [r.component for r in result]).items()}
    result = [r if r.uom else _with_uom(r, uoms.get(r.component, "")) for r in result]
    shown = result if all_rows else planning.shortages(result)
    records = planning.to_records(shown, text=fmt != Format.xlsx)
    if fmt == Format.json:
        typer.echo(json.dumps({"rows": records}, indent=2))
    elif fmt == Format.table:
        if not shown:
            typer.echo("no shortages")
            return
        typer.echo(table(planning.COLUMNS, [[rec[c] for c in planning.COLUMNS] for rec in records]))
    else:
        _emit(records, planning.COLUMNS, fmt, output, "requirements")


def _with_uom(req: planning.Requirement, uom: str) -> planning.Requirement:
    from dataclasses import replace

    return replace(req, uom=uom)


@app.command()
def versions(item: str) -> None:
    """Every revision of ITEM with its state and effectivity window."""
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        found = repository.bom_versions_of(conn, item)
    if not found:
        raise fail(f"error: no BOM revisions of {item}")
    typer.echo(table(("revision", "state", "valid_from", "valid_to", "lines"), [
        (v.revision, v.state.value, v.valid_from.isoformat(), v.valid_to.isoformat() if v.valid_to else "open",
         len(v.lines))
        for v in found
    ]))


@app.command()
def obsolete(item: str, revision: str) -> None:
    """Make a released revision obsolete (it stops being effective; orders that froze it keep it)."""
    from wip_costing.commands import ObsoleteBom

    with domain_errors(), services_from_settings() as services:
        services.handle(ObsoleteBom(item, revision))
    typer.echo(f"BOM {item} rev {revision} is obsolete")
