"""Applying a batch of operation events inside one transaction (``apply_events_in``; the ApplyEvents handler and
its unit of work own the transaction and its retry).

The batch: parse (malformed -> rejected, stored with the raw payload), lock the orders'
operation rows in sorted order, look up event ids already applied (same fingerprint -> duplicate, other ->
conflict, stored), lock the ledger balances the batch can touch (sorted), apply the batch in memory event by
event (a refused event is rejected with its reason and leaves the in-memory state as it was), and write
everything through one ``BatchWriter`` (``wip_costing.batch_writer``): on PostgreSQL, batches of ``STREAM_FROM``
events or more have their stock moves, journal lines and event records loaded while they are computed
(``StreamingWriter``), others are written set-based at the end (``PlainWriter``); then balances, operation
states and problems.

Invariants: an event id is applied at most once (primary key; a transaction that loses a race is retried by the
unit of work and then sees the duplicate); a completion never exceeds what is waiting (row locks); nothing is
half-applied.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger import repository as ledger_repo
from ledger.history import NegativeInThePast, first_negative
from ledger.lots import split_issue
from ledger.model import (
    Balance,
    BalanceKey,
    MoveKind,
    MoveRequest,
    PostedMove,
)
from ledger.posting import post, post_issue_or_receipt
from mes_common.db import utcnow
from mes_common.errors import DomainError
from mes_common.money import ZERO
from wip_costing import repository as repo
from wip_costing.batch_stream import StreamingWriter
from wip_costing.batch_writer import STREAM_FROM, BatchWriter, PlainWriter
from wip_costing.costing import apply_completion, resolve_operation
from wip_costing.events import EventFormatError, EventOutcome, OperationEvent, Status, fingerprint_of, parse_event
from wip_costing.model import OpSpec, OrderClosed, OrderSnapshot, OrderState, OrderStatus, UnknownOrder
from wip_costing.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class LedgerStock:
    """``StockPort`` over locked ledger balances: moving average in memory via ``ledger.posting.post``."""

    balances: dict[BalanceKey, Balance]
    moves: list[PostedMove] = field(default_factory=list)
    # When the batch is recorded (every move of it carries this time); None: each move's own posting time.
    recorded_at: datetime | None = None
    # Per (item, location): its lots with stock, oldest first (``ledger.repository.lock_balances_with_lots``).
    lots: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Per balance: recorded moves dated after the batch's earliest event (``ledger.history.later_moves``): an issue
    # dated before them must not leave the balance negative at any of their moments.
    later: dict[BalanceKey, list[tuple[datetime, Decimal]]] = field(default_factory=dict)
    _latest: datetime | None = None  # the latest moment of the batch's moves so far
    # Per move (same positions as ``moves``): the balance it changed, as it was before (None: there was none).
    _before: list[tuple[BalanceKey, Balance | None]] = field(default_factory=list)

    def mark(self) -> object:
        return len(self.moves)

    def restore(self, mark: object) -> None:
        """Undo the moves posted since ``mark``, newest first."""
        assert isinstance(mark, int)
        for key, before in reversed(self._before[mark:]):
            if before is None:
                self.balances.pop(key, None)
            else:
                self.balances[key] = before
        del self._before[mark:]
        del self.moves[mark:]

    def _key(self, event_id: str, suffix: str) -> str:
        key = f"{event_id}/{suffix}"
        if len(key) <= 200:
            return key
        return f"{hashlib.sha256(event_id.encode()).hexdigest()}/{suffix}"[:200]

    def issue(self, item: str, location: str, qty: Decimal, *, event: OperationEvent, order: str
              ) -> list[tuple[Decimal, int]]:
        # The move's position makes the key unique even when one component is issued twice by one event
        # (a per-unit and a fixed-quantity need of the same component at one operation).
        reason = f"work order {order} operation {event.operation}"
        held = self.lots.get((item, location))
        if not held:  # the usual case: no lots of this component here
            move = self._post(MoveKind.ISSUE, f"issue/{len(self.moves)}/{item}", item, location, qty, None, event,
                              order, reason)
            return [(move.value, len(self.moves) - 1)]
        named = event.lot if event.lot in held else None  # the event's lot, for the component that holds it
        pieces = []
        for lot, part in split_issue(self.balances, held, item, location, qty, named):
            suffix = f"issue/{len(self.moves)}/{item}"
            if lot:
                move = self._post_lot(suffix, item, location, lot, part, event, order, reason)
            else:
                move = self._post(MoveKind.ISSUE, suffix, item, location, part, None, event, order, reason)
            pieces.append((move.value, len(self.moves) - 1))
        return pieces

    def holds_lot(self, item: str, location: str, lot: str) -> bool:
        return lot in self.lots.get((item, location), ())

    def _post_lot(self, suffix: str, item: str, location: str, lot: str, qty: Decimal, event: OperationEvent,
                  order: str, reason: str) -> PostedMove:
        """An ISSUE of ``qty`` from one lot, at that lot's moving average."""
        key = BalanceKey(item, location, lot)
        before = self.balances.get(key)
        move = post(self.balances, MoveRequest(
            idempotency_key=self._key(event.event_id, suffix), kind=MoveKind.ISSUE, item=item, qty=qty,
            from_location=location, lot=lot, actor=event.operator or event.machine or "mes-bridge", reason=reason,
            provenance=event.provenance, effective_at=event.source_time, reference=order,
        ), recorded_at=self.recorded_at)
        self.moves.append(move)
        self._before.append((key, before))
        self._check_later(key, move, before)
        return move

    def receive(self, item: str, location: str, qty: Decimal, value: Decimal, *, event: OperationEvent | None,
                order: str) -> int:
        assert event is not None
        self._post(MoveKind.RECEIPT, f"receipt/{item}", item, location, qty, value, event, order,
                   f"work order {order} completed")
        return len(self.moves) - 1

    def _post(self, kind: MoveKind, suffix: str, item: str, location: str, qty: Decimal, value: Decimal | None,
              event: OperationEvent, order: str, reason: str) -> PostedMove:
        """An ISSUE from ``location`` (``value`` None: at moving average) or a RECEIPT into it at ``value``."""
        key = BalanceKey(item, location)
        before = self.balances.get(key)
        move = post_issue_or_receipt(
            self.balances, idempotency_key=self._key(event.event_id, suffix), kind=kind, item=item, qty=qty,
            location=location, value=value, actor=event.operator or event.machine or "mes-bridge", reason=reason,
            provenance=event.provenance, effective_at=event.source_time, reference=order,
            recorded_at=self.recorded_at,
        )
        self.moves.append(move)
        self._before.append((key, before))
        if kind is MoveKind.ISSUE:
            self._check_later(key, move, before)
        return move

    def _check_later(self, key: BalanceKey, move: PostedMove, before: Balance | None) -> None:
        """Refuse (``NegativeInThePast``) an issue dated before later moves of its balance that would leave it
        negative at one of their moments; the usual case (nothing dated after it) costs two look-ups."""
        moment = move.effective_at
        latest = self._latest
        self._latest = moment if latest is None or moment > latest else latest
        recorded = self.later.get(key)
        if not recorded and (latest is None or moment >= latest):
            return
        later = [(at, qty) for at, qty in recorded or () if at > moment]
        later += [(m.effective_at, m.qty if m.to_key == key else -m.qty) for m in self.moves[:-1]
                  if m.effective_at > moment and key in (m.from_key, m.to_key)]
        found = first_negative(ZERO if before is None else before.qty, later, [(moment, -move.qty)])
        if found is not None:
            raise NegativeInThePast(key, moment, *found)


def _payload(raw: OperationEvent | Mapping[str, Any] | Any) -> str:
    if isinstance(raw, OperationEvent):
        return json.dumps(raw.to_json(), sort_keys=True)
    try:
        return json.dumps(raw, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(raw)


def _problem(event_id: str | None, status: Status, reason: str, raw: Any, fingerprint: str | None,
             now: Any) -> dict[str, Any]:
    return {"event_id": event_id, "status": status.value, "reason": reason, "fingerprint": fingerprint,
            "payload": _payload(raw), "recorded_at": now}


def apply_events_in(uow: UnitOfWork, raw_events: Sequence[OperationEvent | Mapping[str, Any]]
                    ) -> list[EventOutcome]:
    """Apply ``raw_events`` inside ``uow``'s transaction (the caller commits, or retries on a lost race); one
    outcome per event, in order."""
    conn = uow.conn
    now = utcnow()
    outcomes: list[EventOutcome | None] = [None] * len(raw_events)
    problems: list[dict[str, Any]] = []
    parsed: list[tuple[int, OperationEvent]] = []
    for index, raw in enumerate(raw_events):
        try:
            parsed.append((index, raw if isinstance(raw, OperationEvent) else parse_event(raw)))
        except EventFormatError as exc:
            event_id = exc.event_id
            outcomes[index] = EventOutcome(event_id, Status.REJECTED, exc.message)
            problems.append(_problem(event_id, Status.REJECTED, exc.message, raw, None, now))

    by_serial = repo.serial_orders(conn, [e.serial for _, e in parsed if e.work_order is None and e.serial])
    order_of: dict[int, str | None] = {
        i: e.work_order if e.work_order is not None else by_serial.get(e.serial or "") for i, e in parsed
    }
    orders = repo.lock_orders(conn, [o for o in order_of.values() if o is not None], uow.caches.snapshots)
    loaded = repo.headers(orders)

    specs = list(_event_specs(parsed, order_of, orders))  # resolved once for the three bounds below
    keys = _balance_keys(specs)

    earliest = min((e.source_time for _, e in parsed), default=None)

    def lock_balances() -> tuple[dict[BalanceKey, Balance], dict[tuple[str, str], list[str]], ledger_repo.Later]:
        return ledger_repo.lock_balances_with_lots(conn, keys, earliest) if keys else ({}, {}, {})

    # Large PostgreSQL batches are written while they are computed; their journal lines name their stock moves,
    # so the moves' ids are reserved first (with the applied-event look-up and the balance locks: one round trip).
    streaming = uow.postgres and len(parsed) >= STREAM_FROM
    bound = _moves_bound(specs) if streaming else 0
    recorded, move_ids, (balances, lots, later) = repo.recorded_events_with(
        conn, [e.event_id for _, e in parsed], bound, lock_balances)
    if streaming and lots:  # an issue split across lots posts a move per lot: ids for those too
        move_ids = [*move_ids, *ledger_repo.reserve_move_ids(conn, _lot_moves_bound(specs, lots))]
    writer: BatchWriter = (StreamingWriter(conn, move_ids, now, len(parsed)) if streaming
                           else PlainWriter(conn, now))
    stock = LedgerStock(balances, recorded_at=now, lots=lots, later=later)
    states: dict[str, OrderState] = {o: state for o, (_s, state) in orders.items()}
    dirty: set[str] = set()
    with writer:
        for index, event in parsed:
            canonical = event.canonical_json()
            fingerprint = fingerprint_of(canonical)
            seen = recorded.get(event.event_id)
            if seen is not None:
                if seen == fingerprint:
                    outcomes[index] = EventOutcome(event.event_id, Status.DUPLICATE)
                else:
                    reason = f"event {event.event_id} was already applied with different content"
                    outcomes[index] = EventOutcome(event.event_id, Status.CONFLICT, reason)
                    problems.append(_problem(event.event_id, Status.CONFLICT, reason, event, fingerprint, now))
                continue
            order_id = order_of[index]
            try:
                if order_id is None or order_id not in orders:
                    what = f"work order {event.work_order}" if event.work_order else f"serial {event.serial}"
                    raise UnknownOrder(f"event {event.event_id}: unknown {what}")
                snap = orders[order_id][0]
                state = states[order_id]
                if state.status is OrderStatus.CLOSED:  # before resolving the operation: "closed" is the reason given
                    raise OrderClosed(f"work order {order_id} is closed; event {event.event_id} cannot be applied")
                operation = resolve_operation(snap, event)
                new_state, new_entries = apply_completion(snap, state, event, operation, stock)
            except DomainError as exc:
                outcomes[index] = EventOutcome(event.event_id, Status.REJECTED, exc.message)
                problems.append(_problem(event.event_id, Status.REJECTED, exc.message, event, fingerprint, now))
                continue
            states[order_id] = new_state
            dirty.add(order_id)
            recorded[event.event_id] = fingerprint
            writer.add_event((event.event_id, fingerprint, order_id, operation, event.provenance.value, canonical,
                              event.source_time, now), new_entries, stock.moves)
            outcomes[index] = EventOutcome(event.event_id, Status.APPLIED)
        writer.finish(stock.moves, stock.balances, [states[o] for o in sorted(dirty)], loaded, problems)
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def _event_specs(parsed: list[tuple[int, OperationEvent]], order_of: Mapping[int, str | None],
                 orders: Mapping[str, tuple[OrderSnapshot, OrderState]]) -> Iterator[tuple[OrderSnapshot, OpSpec]]:
    """The operation each event completes (with its order's snapshot), for the events whose order and operation
    resolve (the others will be rejected and post nothing)."""
    for index, event in parsed:
        order_id = order_of[index]
        if order_id is None or order_id not in orders:
            continue
        snap = orders[order_id][0]
        try:
            yield snap, snap.op(resolve_operation(snap, event))
        except DomainError:
            continue


def _balance_keys(specs: Sequence[tuple[OrderSnapshot, OpSpec]]) -> set[BalanceKey]:
    """The stock balances the batch can post to, the ones it locks: per event, its operation's materials at the
    operation's supply location, and the finished item at the order's receiving location when the operation is
    the last (``costing.apply_completion`` issues and receives nothing else). Reports at the other operations of
    the same orders do not wait for these rows."""
    keys: set[BalanceKey] = set()
    for snap, spec in specs:
        keys.update(BalanceKey(m.component, spec.supply_location) for m in spec.materials)
        if spec.next_op is None:
            keys.add(BalanceKey(snap.item, snap.receiving_location))
    return keys


def _moves_bound(specs: Sequence[tuple[OrderSnapshot, OpSpec]]) -> int:
    """At most how many stock moves the batch can post: per event, one issue per material need of its operation,
    plus a receipt at the last operation (events that will be rejected count too: an upper bound is enough)."""
    return sum(len(spec.materials) + (spec.next_op is None) for _snap, spec in specs)


def _lot_moves_bound(specs: Sequence[tuple[OrderSnapshot, OpSpec]], lots: Mapping[tuple[str, str], list[str]]) -> int:
    """How many more moves than ``_moves_bound`` counted the batch can post when issues split across lots: per
    event, the lots of each component of its operation held in lots."""
    return sum(len(lots.get((m.component, spec.supply_location), ())) for _snap, spec in specs for m in spec.materials)
