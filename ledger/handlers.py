"""Handlers of the ledger's commands (``ledger.commands``): each runs in the unit of work it is given, commits
it, and returns what happened (never prints). Refusals are ``DomainError``s raised before anything is written.

The unit of work is ``wip_costing.unit_of_work.UnitOfWork`` (this package cannot import it: the arrows point
from ``wip_costing`` to ``ledger``), seen here through the ``Transaction`` protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from ledger import importer, service
from ledger import repository as repo
from ledger.commands import (
    DecideQuarantine,
    ImportBalances,
    ImportCsv,
    ImportItems,
    ImportLocations,
    MoveCommand,
    PostCount,
    PostIssue,
    PostReceipt,
    PostTransfer,
    ReverseMove,
)
from ledger.importer import ImportResult
from ledger.model import BalanceKey, InvalidMove, MoveKind, MoveRequest, PostedMove, UnknownItem, UnknownLocation
from mes_common.money import mul_cents


class Transaction(Protocol):
    @property
    def conn(self) -> Connection: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


def _request(cmd: MoveCommand, kind: MoveKind, qty: Any, **sides: Any) -> MoveRequest:
    return MoveRequest(idempotency_key=cmd.key, kind=kind, item=cmd.item, qty=qty, actor=cmd.actor,
                       reason=cmd.reason, provenance=cmd.provenance, effective_at=cmd.effective_at,
                       reference=cmd.reference, lot=cmd.lot, **sides)


def _post_one(uow: Transaction, request: MoveRequest) -> PostedMove:
    [move] = service.post_moves(uow.conn, [request])
    uow.commit()
    return move


def post_receipt(cmd: PostReceipt, uow: Transaction) -> PostedMove:
    if not cmd.quarantine and (cmd.value is None) == (cmd.unit_cost is None):
        raise InvalidMove(f"receipt of {cmd.item}: give exactly one of a total value or a unit cost")
    value = cmd.value if cmd.unit_cost is None else mul_cents(cmd.qty, cmd.unit_cost)
    kind = MoveKind.QUARANTINE_RETURN if cmd.quarantine else MoveKind.RECEIPT
    return _post_one(uow, _request(cmd, kind, cmd.qty, to_location=cmd.to_location, value=value,
                                   serials=cmd.serials))


def post_issue(cmd: PostIssue, uow: Transaction) -> PostedMove:
    return _post_one(uow, _request(cmd, MoveKind.ISSUE, cmd.qty, from_location=cmd.from_location,
                                   serials=cmd.serials))


def post_transfer(cmd: PostTransfer, uow: Transaction) -> PostedMove:
    return _post_one(uow, _request(cmd, MoveKind.TRANSFER, cmd.qty, from_location=cmd.from_location,
                                   to_location=cmd.to_location, serials=cmd.serials))


def decide_quarantine(cmd: DecideQuarantine, uow: Transaction) -> PostedMove:
    if (cmd.accept_to is None) == (cmd.reject_to is None):
        raise InvalidMove(f"quarantine decision on {cmd.item}: give exactly one of accept-to or reject-to")
    kind = MoveKind.QUARANTINE_ACCEPT if cmd.accept_to else MoveKind.QUARANTINE_REJECT
    return _post_one(uow, _request(cmd, kind, cmd.qty, from_location=cmd.from_location,
                                   to_location=cmd.accept_to or cmd.reject_to))


def post_count(cmd: PostCount, uow: Transaction) -> PostedMove | None:
    """The adjustment a count calls for (None: the stock is as counted, nothing is posted)."""
    if (cmd.counted is None) == (cmd.delta is None):
        raise InvalidMove(f"count of {cmd.item} at {cmd.location}: give exactly one of counted or delta")
    conn = uow.conn
    if cmd.counted is not None:
        if cmd.item not in repo.get_items(conn, [cmd.item]):
            raise UnknownItem(cmd.item)
        if cmd.location not in repo.get_locations(conn, [cmd.location]):
            raise UnknownLocation(cmd.location)
        # Read under the lock so the difference is against the balance as it stands when posted.
        key = BalanceKey(cmd.item, cmd.location, cmd.lot)
        amount = cmd.counted - repo.lock_balances(conn, [key])[key].qty
    else:
        assert cmd.delta is not None
        amount = cmd.delta
    if amount == 0:
        return None
    side = {"to_location": cmd.location} if amount > 0 else {"from_location": cmd.location}
    return _post_one(uow, _request(cmd, MoveKind.ADJUSTMENT, abs(amount), **side))


def reverse_move(cmd: ReverseMove, uow: Transaction) -> PostedMove:
    move = service.reverse_move(uow.conn, cmd.move_id, cmd.actor, cmd.reason)
    uow.commit()
    return move


def finish_import(cmd: ImportCsv, uow: Transaction) -> None:
    """Commit an import, or roll it back when it was a dry run (its result says what it would have changed)."""
    if cmd.dry_run:
        uow.rollback()
    else:
        uow.commit()


def import_items(cmd: ImportItems, uow: Transaction) -> ImportResult:
    result = importer.import_items(uow.conn, cmd.source, actor=cmd.actor, name=cmd.name, progress=cmd.progress)
    finish_import(cmd, uow)
    return result


def import_locations(cmd: ImportLocations, uow: Transaction) -> ImportResult:
    result = importer.import_locations(uow.conn, cmd.source, actor=cmd.actor, name=cmd.name)
    finish_import(cmd, uow)
    return result


def import_balances(cmd: ImportBalances, uow: Transaction) -> ImportResult:
    result = importer.import_balances(uow.conn, cmd.source, actor=cmd.actor, effective_at=cmd.effective_at,
                                      name=cmd.name, adjust_reason=cmd.adjust_reason, progress=cmd.progress)
    finish_import(cmd, uow)
    return result


HANDLERS: dict[type, Callable[[Any, Transaction], Any]] = {
    PostReceipt: post_receipt,
    PostIssue: post_issue,
    PostTransfer: post_transfer,
    PostCount: post_count,
    DecideQuarantine: decide_quarantine,
    ReverseMove: reverse_move,
    ImportItems: import_items,
    ImportLocations: import_locations,
    ImportBalances: import_balances,
}
