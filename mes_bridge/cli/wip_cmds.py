"""``mes-bridge wo|events|wip|journal ...``: work orders, the event path, WIP value, cost journal.

Times: an ISO 8601 timestamp (a timezone is required, ``Z`` accepted) or a date; a date means the end of that
UTC day for ``--as-of`` and ``--to``, and its start for ``--from``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mes_bridge.cli.common import cli_number, domain_errors, fail, services_from_settings
from mes_common import moments
from mes_common.limits import MAX_QTY
from mes_common.money import ZERO, fmt, fmt_qty, to_cents

if TYPE_CHECKING:
    from wip_costing.release import CloseResult

wo_app = typer.Typer(help="Work orders.", no_args_is_help=True)
events_app = typer.Typer(help="Operation events.", no_args_is_help=True)
wip_app = typer.Typer(help="Work-in-progress value.", no_args_is_help=True)
journal_app = typer.Typer(help="Cost journal.", no_args_is_help=True)

BATCH = 1000


def parse_moment(text: str | None, *, end_of_day: bool, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return moments.parse_moment(text, end_of_day=end_of_day, naive_is_utc=False)
    except moments.MomentError as exc:
        if exc.problem == "timezone":
            raise fail(f"error: {option} {text!r} has no timezone (add Z or +hh:mm)") from None
        raise fail(f"error: {option} {text!r} is not an ISO 8601 date or timestamp") from None


@wo_app.command("release")
def release(
    item: str,
    qty: str,
    wo_id: Annotated[str, typer.Option("--id", help="work order id")],
    on: Annotated[str | None, typer.Option("--date", help="release date (effectivity), default today")] = None,
    due: Annotated[str | None, typer.Option("--due", help="due date")] = None,
    receiving: Annotated[str | None, typer.Option("--receiving-location", help="where finished units go")] = None,
    serial: Annotated[list[str] | None, typer.Option("--serial", help="serial numbers of this order")] = None,
) -> None:
    """Release a work order, freezing the BOM and routing versions effective on --date."""
    from wip_costing.commands import ReleaseOrder

    quantity = cli_number(qty, "quantity", maximum=MAX_QTY, above=True)
    try:
        day = date.fromisoformat(on) if on else None
        due_day = date.fromisoformat(due) if due else None
    except ValueError as exc:
        raise fail(f"error: {exc}") from None
    with services_from_settings() as services, domain_errors():
        snap = services.handle(ReleaseOrder(wo_id, item, quantity, on=day, due_date=due_day,
                                            receiving_location=receiving, serials=tuple(serial or ())))
    ops = ", ".join(f"{o.number}@{o.work_center}" for o in snap.operations)
    print(f"released {wo_id}: {qty} x {item}, BOM rev {snap.bom_revision or '-'}, routing rev "
          f"{snap.routing_revision} ({ops}), receiving {snap.receiving_location}")


@wo_app.command("scan")
def scan(
    wo_id: str,
    machine: Annotated[str, typer.Option("--machine", help="the machine the order is now running on")],
    operator: Annotated[str | None, typer.Option("--operator", help="who scanned")] = None,
    terminal: Annotated[str | None, typer.Option("--terminal", help="the terminal scanned at")] = None,
) -> None:
    """Record a work order scanned at a machine's terminal: the machine's counts belong to it from now on."""
    from wip_costing.commands import RecordScan

    with services_from_settings() as services, domain_errors():
        done = services.handle(RecordScan(machine, wo_id, operator=operator, terminal=terminal))
    print(f"{machine} now works on {done.work_order} (operation {done.operation} at {done.work_center}), "
          f"scanned {done.scanned_at.isoformat()}")


@wo_app.command("close")
def close(
    wo_id: str,
    force: Annotated[bool, typer.Option("--force", help="close even with units still waiting (written off)")] = False,
) -> None:
    """Close a work order: any residue goes to variance accounts by cause. With units still waiting it is refused,
    saying what value would go to variance, unless --force."""
    from wip_costing.commands import CloseOrder

    with services_from_settings() as services, domain_errors():
        result = services.handle(CloseOrder(wo_id, force))
    print("\n".join(describe_close(result)))


def describe_close(result: CloseResult) -> list[str]:
    """The close report: variance postings by account and element, then actual vs standard per element."""
    from wip_costing.journal import ELEMENTS
    from wip_costing.pools import Element

    lines = [f"work order {result.order_id} closed"]
    if result.entry is not None:
        for line in result.entry.lines:
            if line.debit and line.split is not None:
                lines.extend(f"  {line.account.value:<13} {element.value:<9} {part}"
                             for element, part in zip(ELEMENTS, line.split, strict=True) if part)
    comp = result.comparison
    lines.append(f"  produced {fmt_qty(comp.produced)}: actual vs standard per element")
    for e in Element:
        lines.append(f"  {e.value:<9} actual {to_cents(comp.actual.get(e, ZERO))}  standard {comp.standard[e]}  "
                     f"difference {to_cents(comp.difference[e])}")
    return lines


@wo_app.command("show")
def show(wo_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Per-operation quantities and pool values of a work order."""
    from wip_costing.reports import order_view

    with services_from_settings() as services, services.read() as conn:
        view = order_view(conn, wo_id)
    if view is None:
        raise fail(f"error: unknown work order {wo_id}")
    if as_json:
        print(json.dumps(view, indent=2))
        return
    print(f"{view['id']}  {view['qty']} x {view['item']}  status {view['status']}  BOM rev {view['bom_revision']}  "
          f"routing rev {view['routing_revision']}  released {view['released_on']}  produced {view['produced']}")
    print(f"{'op':>5} {'wc':<10} {'recv':>8} {'good':>8} {'scrap':>8} {'rework':>8} {'waiting':>8} "
          f"{'first-pass':>12} {'rework pool':>12} {'kWh':>10}")
    for o in view["operations"]:
        print(f"{o['operation']:>5} {o['work_center']:<10} {o['received']:>8} {o['completed_good']:>8} "
              f"{o['scrapped']:>8} {o['reworked']:>8} {o['waiting']:>8} {o['first_pass']['value']:>12} "
              f"{o['rework']['value']:>12} {o['energy']['kwh']:>10}")
    energy = view["energy"]
    machines = ", ".join(f"{m} {kwh}" for m, kwh in energy["by_machine"].items()) or "none"
    print(f"energy {energy['kwh']} kWh ({energy['metered_kwh']} metered, {energy['standard_kwh']} standard); "
          f"by machine: {machines}")
    for m in view["materials"]:
        print(f"issued {m['qty']} {m['item']}" + (f" lot {m['lot']}" if m["lot"] else "") + f" value {m['value']}")


@events_app.command("apply")
def apply(file: Path) -> None:
    """Apply the events of a JSON-lines file; one outcome per event. Exit 1 if any was rejected or conflicting."""
    from wip_costing.commands import ApplyEvents
    from wip_costing.events import Status, read_jsonl

    if not file.is_file():
        raise fail(f"error: no such file {file}")
    events = read_jsonl(file.read_bytes())
    bad = 0
    with services_from_settings() as services:
        for start in range(0, len(events), BATCH):
            for outcome in services.handle(ApplyEvents(events[start:start + BATCH])):
                reason = f": {outcome.reason}" if outcome.reason else ""
                print(f"{outcome.status.value} {outcome.event_id or '-'}{reason}")
                bad += outcome.status in (Status.REJECTED, Status.CONFLICT)
    if bad:
        raise fail(f"{bad} of {len(events)} events rejected or conflicting")


@events_app.command("list")
def list_events(
    status: Annotated[str | None, typer.Option(help="rejected or conflict (default: both)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 1000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stored rejected and conflicting events, with their reasons and payloads."""
    from wip_costing.reports import list_problems

    if status not in (None, "rejected", "conflict"):
        raise fail(f"error: --status {status!r}: choose rejected or conflict")
    with services_from_settings() as services, services.read() as conn:
        rows = list_problems(conn, status, limit)
    if as_json:
        print(json.dumps({"rows": [{**r, "recorded_at": r["recorded_at"].isoformat()} for r in rows]}, indent=2))
        return
    if not rows:
        print(f"no {status or 'rejected or conflicting'} events stored")
        return
    for r in rows:
        print(f"{r['recorded_at'].isoformat()} {r['status']} {r['event_id'] or '-'}: {r['reason']}")


@wip_app.command("value")
def value(
    as_of: Annotated[str | None, typer.Option("--as-of", help="timestamp or date (end of day); default now")] = None,
    by: Annotated[str, typer.Option(help="order|operation|work-center|element|provenance")] = "order",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    energy: Annotated[bool, typer.Option("--energy", help="also the kWh used per row (reads every completion)")] = (
        False),
) -> None:
    """WIP value from the cost journal, as of a moment, grouped."""
    from wip_costing.reports import wip_value

    moment = parse_moment(as_of, end_of_day=True, option="--as-of")
    with services_from_settings() as services, services.read() as conn, domain_errors():
        report = wip_value(conn, moment, by, energy=energy)
    if as_json:
        print(json.dumps(report.to_json()))
        return
    for row in report.rows:
        key = "  ".join(f"{k}={v}" for k, v in row.key.items())
        kwh = "" if row.kwh is None else f" {fmt_qty(row.kwh):>10} kWh"
        print(f"{key:<50} {fmt(row.value):>14} {fmt((row.share * 100).quantize(Decimal('0.01'))):>7}%{kwh}")
    print(f"{'total':<50} {fmt(report.total):>14}")


@journal_app.command("export")
def export(
    file: Path,
    start: Annotated[str | None, typer.Option("--from", help="timestamp or date (start of day)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="timestamp or date (end of day)")] = None,
) -> None:
    """Write the cost journal lines dated between --from and --to to a CSV file."""
    from wip_costing.reports import export_journal

    begin = parse_moment(start, end_of_day=False, option="--from")
    finish = parse_moment(end, end_of_day=True, option="--to")
    with services_from_settings() as services, services.read() as conn:
        count = export_journal(conn, begin, finish, file)
    print(f"{count} journal lines written to {file}")
