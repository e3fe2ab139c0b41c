"""``mes-bridge ledger ...``: CSV import, on-hand (now or as of a moment), invariant check, manual moves.

Every manual move is recorded with ``--actor`` (default: $USER), provenance manual, and a reason. A move's
``--key`` makes a retry harmless (the same key and content returns the original move).
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger import commands as cmds
from ledger import queries as ledger_queries
from ledger import repository as repo
from ledger.model import PostedMove
from mes_bridge.cli.common import cli_number, domain_errors, engine_from_settings, fail, services_from_settings
from mes_common import moments
from mes_common.limits import MAX_QTY, MAX_RATE, MAX_VALUE
from mes_common.money import fmt, fmt_qty

PROGRESS_FROM = 1_000_000  # bytes: a file this large shows a progress bar on stderr
app = typer.Typer(help="Stock ledger: items, locations, moves, balances.", no_args_is_help=True)


class ImportKind(StrEnum):
    items = "items"
    locations = "locations"
    balances = "balances"


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


Actor = Annotated[str, typer.Option("--actor", help="who is doing this (recorded on every record)")]
Reason = Annotated[str, typer.Option("--reason", help="why (recorded on the move)")]
Key = Annotated[str | None, typer.Option("--key", help="idempotency key (default: a new one)")]
When = Annotated[str | None, typer.Option("--date", help="when it happened: ISO date or time (default now, UTC)")]
Lot = Annotated[str, typer.Option("--lot", help="lot number")]
Serials = Annotated[list[str] | None, typer.Option("--serial", help="serial number of a unit moved (repeat per unit)")]


def parse_moment(text: str, *, end_of_day: bool) -> datetime:
    """An ISO date or datetime; naive means UTC. A bare date means its end (as-of) or its start (posting)."""
    try:
        return moments.parse_moment(text, end_of_day=end_of_day, naive_is_utc=True)
    except moments.MomentError:
        raise fail(f"error: {text!r} is not an ISO date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM[:SS][+00:00])") from None


_MAXIMA = {"qty": MAX_QTY, "counted": MAX_QTY, "delta": MAX_QTY, "value": MAX_VALUE, "unit cost": MAX_RATE}


def _number(text: str, name: str) -> Decimal:
    return cli_number(text, name, maximum=_MAXIMA[name], signed=name == "delta")


@app.command("import")
def import_(
    kind: Annotated[ImportKind, typer.Argument(help="items | locations | balances")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="UTF-8 CSV with SPEC's header")],
    actor: Actor = _default_actor(),
    when: Annotated[str | None, typer.Option(
        "--date", help="balances: their effective date (default 1970-01-01, the start of the ledger's time, so "
                       "opening balances come before every event)")] = None,
    adjust: Annotated[bool, typer.Option(
        "--adjust", help="balances: post the difference to an earlier import of a balance as a count adjustment "
                         "(needs --reason)")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="why the count adjustments (with --adjust)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what the import would change; write nothing")] = False,
) -> None:
    """Import a CSV file, all or nothing; every problem is reported with its row, column and character.

    Idempotent: records and balances already imported with the same content are counted "already present"."""
    if adjust != (reason is not None) or (reason is not None and kind is not ImportKind.balances):
        raise fail("error: --adjust and --reason go together, with balances")
    effective_at = parse_moment(when, end_of_day=False) if when else None
    size = file.stat().st_size
    command: cmds.ImportCsv
    with domain_errors(), services_from_settings() as services, \
            typer.progressbar(length=size, label=f"importing {file.name}", file=sys.stderr,
                              hidden=size < PROGRESS_FROM or not sys.stderr.isatty()) as bar:
        if kind is ImportKind.items:
            command = cmds.ImportItems(source=file, actor=actor, dry_run=dry_run, progress=bar.update)
        elif kind is ImportKind.locations:
            command = cmds.ImportLocations(source=file, actor=actor, dry_run=dry_run)
        else:
            command = cmds.ImportBalances(source=file, actor=actor, effective_at=effective_at, adjust_reason=reason,
                                          dry_run=dry_run, progress=bar.update)
        result = services.handle(command)
    typer.echo(f"{result} (dry run: nothing written)" if dry_run else str(result))


@app.command()
def check() -> None:
    """Verify the ledger's invariants (balances equal the sum of moves, nothing negative); exit 1 if violated."""
    with services_from_settings() as services, services.read() as conn:
        problems = repo.check(conn)
    if problems:
        for problem in problems:
            typer.echo(problem, err=True)
        raise fail(f"ledger check: {len(problems)} violation(s)")
    typer.echo("ledger check: ok")


@app.command()
def onhand(
    item: Annotated[str | None, typer.Argument(help="only this item")] = None,
    location: Annotated[str | None, typer.Option("--location", help="only this location")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO date (end of that day, UTC) or time")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='{"rows": [{"item", "location", "lot", "qty", "value"}]}')
    ] = False,
) -> None:
    """Stock on hand per item x location x lot, now or as of a past moment."""
    moment = parse_moment(as_of, end_of_day=True) if as_of else None
    with domain_errors(), services_from_settings() as services, services.read() as conn:
        rows = repo.onhand(conn, item, location, moment)
    if as_json:
        typer.echo(json.dumps(repo.onhand_json(rows)))
        return
    table = [["item", "location", "lot", "qty", "value"]]
    table += [[r.item, r.location, r.lot, fmt_qty(r.qty), fmt(r.value)] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(5)]
    for line in table:
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        typer.echo("  ".join(cells).rstrip())


def _post(command: object) -> PostedMove | None:
    with domain_errors(), services_from_settings() as services:
        move: PostedMove | None = services.handle(command)
    return move


def _show(move: PostedMove | None) -> None:
    assert move is not None
    sides = f"{move.from_location or '-'} -> {move.to_location or '-'}"
    lot = f" lot {move.lot}" if move.lot else ""
    typer.echo(f"move {move.id}: {move.kind} {fmt_qty(move.qty)} {move.item}{lot} {sides} value {fmt(move.value)}")


def _sides(key: str | None, actor: str, reason: str, when: str | None, lot: str) -> dict[str, Any]:
    """What every manual move command carries (its key: the given one, else a new one)."""
    common: dict[str, Any] = {"actor": actor, "reason": reason, "lot": lot,
                              "effective_at": parse_moment(when, end_of_day=False) if when else None}
    if key is not None:
        common["key"] = key
    return common


@app.command()
def receive(
    item: str,
    qty: str,
    to: Annotated[str, typer.Option("--to", help="receiving location")],
    value: Annotated[str | None, typer.Option("--value", help="total value in cents, e.g. 400.00")] = None,
    unit_cost: Annotated[
        str | None, typer.Option("--unit-cost", help="or a unit cost (value = qty x unit cost)")
    ] = None,
    lot: Lot = "",
    quarantine: Annotated[bool, typer.Option("--quarantine", help="a return held in quarantine")] = False,
    serial: Serials = None,
    key: Key = None,
    actor: Actor = _default_actor(),
    reason: Reason = "receipt",
    when: When = None,
) -> None:
    """Receive QTY of ITEM into a location at a total value (or unit cost)."""
    if (value is None) == (unit_cost is None) and not quarantine:
        raise fail("error: give exactly one of --value or --unit-cost")
    total = _number(value, "value") if value is not None else None
    cost = _number(unit_cost, "unit cost") if unit_cost is not None else None
    _show(_post(cmds.PostReceipt(item=item, qty=_number(qty, "qty"), to_location=to, value=total, unit_cost=cost,
                                 quarantine=quarantine, serials=tuple(serial or ()),
                                 **_sides(key, actor, reason, when, lot))))


@app.command()
def issue(
    item: str,
    qty: str,
    from_: Annotated[str, typer.Option("--from", help="issuing location")],
    lot: Lot = "",
    serial: Serials = None,
    key: Key = None,
    actor: Actor = _default_actor(),
    reason: Reason = "issue",
    when: When = None,
) -> None:
    """Issue QTY of ITEM out of a location at its moving-average cost."""
    _show(_post(cmds.PostIssue(item=item, qty=_number(qty, "qty"), from_location=from_, serials=tuple(serial or ()),
                               **_sides(key, actor, reason, when, lot))))


@app.command()
def transfer(
    item: str,
    qty: str,
    from_: Annotated[str, typer.Option("--from")],
    to: Annotated[str, typer.Option("--to")],
    lot: Lot = "",
    serial: Serials = None,
    key: Key = None,
    actor: Actor = _default_actor(),
    reason: Reason = "transfer",
    when: When = None,
) -> None:
    """Move QTY of ITEM between locations at its moving-average cost."""
    _show(_post(cmds.PostTransfer(item=item, qty=_number(qty, "qty"), from_location=from_, to_location=to,
                                  serials=tuple(serial or ()), **_sides(key, actor, reason, when, lot))))


@app.command()
def inspect(
    item: str,
    qty: str,
    from_: Annotated[str, typer.Option("--from", help="quarantine location")],
    accept_to: Annotated[str | None, typer.Option("--accept-to", help="accept into this location")] = None,
    reject_to: Annotated[str | None, typer.Option("--reject-to", help="reject into this scrap location")] = None,
    lot: Lot = "",
    key: Key = None,
    actor: Actor = _default_actor(),
    reason: Reason = "inspected",
    when: When = None,
) -> None:
    """Release quarantined stock: accept it into a usable location, or reject it to scrap."""
    if (accept_to is None) == (reject_to is None):
        raise fail("error: give exactly one of --accept-to or --reject-to")
    _show(_post(cmds.DecideQuarantine(item=item, qty=_number(qty, "qty"), from_location=from_, accept_to=accept_to,
                                      reject_to=reject_to, **_sides(key, actor, reason, when, lot))))


@app.command()
def adjust(
    item: str,
    location: Annotated[str, typer.Option("--location")],
    reason: Annotated[str, typer.Option("--reason", help="why (required for a count adjustment)")],
    counted: Annotated[str | None, typer.Option("--counted", help="the quantity counted")] = None,
    delta: Annotated[str | None, typer.Option("--delta", help="or the difference, e.g. --delta -2")] = None,
    lot: Lot = "",
    key: Key = None,
    actor: Actor = _default_actor(),
    when: When = None,
) -> None:
    """Cycle-count adjustment: stock found (at the current average) or lost, from a count or a difference."""
    if (counted is None) == (delta is None):
        raise fail("error: give exactly one of --counted or --delta")
    move = _post(cmds.PostCount(
        item=item, location=location, counted=_number(counted, "counted") if counted is not None else None,
        delta=_number(delta, "delta") if delta is not None else None, **_sides(key, actor, reason, when, lot)))
    if move is None:
        typer.echo(f"no adjustment: {item} at {location} is as counted")
        return
    _show(move)


@app.command()
def reverse(
    move_id: int,
    reason: Annotated[str, typer.Option("--reason", help="why the move was wrong")],
    actor: Actor = _default_actor(),
) -> None:
    """Correct a move by posting its opposite at the same value (a move is reversed at most once)."""
    _show(_post(cmds.ReverseMove(move_id=move_id, actor=actor, reason=reason)))


@app.command()
def moves(
    item: Annotated[str | None, typer.Argument(help="only this item")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
) -> None:
    """The latest moves (who, when, why), oldest first."""
    with services_from_settings() as services, services.read() as conn:
        found = ledger_queries.list_moves(conn, item=item, limit=limit)
    for m in found:
        sides = f"{m.from_location or '-'} -> {m.to_location or '-'}"
        lot = f" lot {m.lot}" if m.lot else ""
        typer.echo(
            f"{m.id}\t{m.effective_at.isoformat()}\t{m.kind}\t{m.item}{lot}\t{fmt_qty(m.qty)}\t{sides}\t"
            f"{fmt(m.value)}\t{m.actor}\t{m.provenance}\t{m.reason}"
        )


@app.command()
def serials(
    item: str,
    location: Annotated[str | None, typer.Option("--location", help="only this location")] = None,
) -> None:
    """Serial numbers of ITEM in stock, with their location and lot."""
    with services_from_settings() as services, services.read() as conn:
        found = repo.serials_in_stock(conn, item, location)
    for serial, where, lot in found:
        typer.echo(f"{serial}\t{where}\t{lot}")


@app.command("lot-usage")
def lot_usage(
    item: str,
    lot: str,
    as_json: Annotated[bool, typer.Option("--json", help='{"rows": [{"work_order", "qty", "value", "first", '
                                                         '"last"}]}')] = False,
) -> None:
    """Which work orders consumed LOT of ITEM (where-used by lot), with how much and when."""
    with engine_from_settings() as engine, engine.connect() as conn:
        rows = ledger_queries.lot_consumers(conn, item, lot)
    if as_json:
        typer.echo(json.dumps({"rows": rows}))
        return
    if not rows:
        typer.echo(f"no work order consumed lot {lot} of {item}")
        return
    for r in rows:
        typer.echo(f"{r['work_order']}\t{r['qty']}\t{r['value']}\t{r['first']}\t{r['last']}")
