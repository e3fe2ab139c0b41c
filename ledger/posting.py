"""The stock ledger's pure posting rules: ``post`` applies a move request to a balance map (moving average),
``reversal_of`` builds the request that undoes a move, ``move_serials`` tracks serial-numbered units.

Invariants (``post`` keeps them on any balance map; ``ledger.queries.check`` verifies them in the database):
- Valuation is per balance (item x location x lot), moving average: an outgoing move takes
  ``take_share(balance.value, balance.qty, qty)``, so the last unit takes exactly what remains and a balance at
  zero quantity is worth exactly zero. An incoming move adds its value: a receipt's given total (in cents; the
  unit cost is derived, never multiplied back), or ``qty`` x the destination's current average.
- Stock never goes negative: a move that would is refused with ``InsufficientStock`` and the map is unchanged.
- Moves are never changed; a correction is a ``REVERSAL`` moving the same quantity back at the same value
  (taking out never more than the balance holds, and exactly what remains when it empties the balance).
- A serial-numbered unit is in one place at a time (``move_serials``): it leaves only from where it is, and is
  received only when not in stock.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from decimal import Decimal

from ledger.model import (
    MAX_KEY_LENGTH,
    QTY_PLACES,
    Balance,
    BalanceKey,
    InsufficientStock,
    InvalidMove,
    MoveKind,
    MoveRequest,
    PostedMove,
    SerialState,
    SerialUnavailable,
    decimal_places,
)
from mes_common.money import CENTS, mul_cents, take_share
from mes_common.provenance import Provenance


def _balance(balances: MutableMapping[BalanceKey, Balance], key: BalanceKey) -> Balance:
    found = balances.get(key)
    return found if found is not None else Balance(key)


def post(
    balances: MutableMapping[BalanceKey, Balance],
    request: MoveRequest,
    *,
    recorded_at: datetime | None = None,
) -> PostedMove:
    """Apply ``request`` to ``balances`` (moving average per balance) and return the move to record.

    Raises ``InsufficientStock`` (naming the quantity available) and leaves ``balances`` unchanged when the
    source balance holds less than ``request.qty``.
    """
    recorded = recorded_at or datetime.now(UTC)
    qty = request.qty
    updates: dict[BalanceKey, Balance] = {}
    value: Decimal
    source_key = request.from_key
    if source_key is not None:
        source = _balance(balances, source_key)
        if source.qty < qty:
            raise InsufficientStock(request.item, source_key.location, request.lot, qty, source.qty)
        if request.value is not None and qty < source.qty:
            # A reversal takes back the original value, but never more than the balance holds.
            value = min(request.value, source.value)
        else:
            value = take_share(source.value, source.qty, qty)
        updates[source_key] = Balance(source_key, source.qty - qty, source.value - value)
    elif request.value is not None:
        value = request.value
    else:
        target_key = request.to_key
        assert target_key is not None  # guaranteed by MoveRequest validation
        value = mul_cents(qty, _balance(balances, target_key).average)
    target_key = request.to_key
    if target_key is not None:
        target = _balance(balances, target_key)
        updates[target_key] = Balance(target_key, target.qty + qty, target.value + value)
    balances.update(updates)
    return PostedMove(
        idempotency_key=request.idempotency_key,
        kind=request.kind,
        item=request.item,
        qty=qty,
        from_location=request.from_location,
        to_location=request.to_location,
        lot=request.lot,
        value=value,
        requested_value=request.value,
        actor=request.actor,
        reason=request.reason,
        provenance=request.provenance,
        effective_at=request.effective_at or recorded,
        recorded_at=recorded,
        reference=request.reference,
        reverses=request.reverses,
        serials=request.serials,
    )


def post_issue_or_receipt(
    balances: MutableMapping[BalanceKey, Balance], *, idempotency_key: str, kind: MoveKind, item: str, qty: Decimal,
    location: str, value: Decimal | None, actor: str, reason: str, provenance: Provenance, effective_at: datetime,
    reference: str | None, recorded_at: datetime | None = None,
) -> PostedMove:
    """``post`` of an ISSUE (from ``location``, ``value`` None) or a RECEIPT (into ``location`` at ``value``) of
    an unlotted item without serials; returns what ``post`` returns, with the same arithmetic and refusals.

    A hot path (costing's backflush and receipts): when the arguments are plainly what ``MoveRequest`` accepts, the
    move is posted without building and re-validating a request; anything else goes through
    ``post(MoveRequest(...))``, whose validation names what is wrong. ``recorded_at``: the recording time of the
    caller's batch (default now).
    """
    if not _plainly_valid(idempotency_key, qty, value, effective_at):
        issue = kind is MoveKind.ISSUE
        return post(balances, MoveRequest(
            idempotency_key=idempotency_key, kind=kind, item=item, qty=qty,
            from_location=location if issue else None, to_location=None if issue else location, value=value,
            actor=actor, reason=reason, provenance=provenance, effective_at=effective_at, reference=reference,
        ), recorded_at=recorded_at)
    key = BalanceKey(item, location)
    balance = _balance(balances, key)
    if kind is MoveKind.ISSUE:
        if value is not None:
            raise InvalidMove(f"move {idempotency_key!r}: the value of an outgoing move is derived from the balance")
        if balance.qty < qty:
            raise InsufficientStock(item, location, "", qty, balance.qty)
        moved = take_share(balance.value, balance.qty, qty)
        balances[key] = Balance(key, balance.qty - qty, balance.value - moved)
        from_location, to_location = location, None
    elif kind is MoveKind.RECEIPT and value is not None:
        moved = value
        balances[key] = Balance(key, balance.qty + qty, balance.value + moved)
        from_location, to_location = None, location
    else:
        raise InvalidMove(f"move {idempotency_key!r}: only issues and receipts at a given value are posted this way")
    return PostedMove(
        idempotency_key=idempotency_key, kind=kind, item=item, qty=qty, from_location=from_location,
        to_location=to_location, lot="", value=moved, requested_value=value, actor=actor, reason=reason,
        provenance=provenance, effective_at=effective_at, recorded_at=recorded_at or datetime.now(UTC),
        reference=reference, reverses=None, serials=(), id=None,
    )


def _plainly_valid(key: str, qty: Decimal, value: Decimal | None, effective_at: datetime) -> bool:
    """What ``MoveRequest`` checks of these arguments, answered without raising (its messages stay its own)."""
    if not key or len(key) > MAX_KEY_LENGTH or effective_at.tzinfo is None:
        return False
    if type(qty) is not Decimal or not qty.is_finite() or qty <= 0 or decimal_places(qty) > QTY_PLACES:
        return False
    return value is None or (type(value) is Decimal and value.is_finite() and value >= 0
                             and value == value.quantize(CENTS))


def reversal_of(move: PostedMove, *, actor: str, reason: str, effective_at: datetime | None = None) -> MoveRequest:
    """The request that undoes ``move``: the same quantity back, at the value it moved."""
    if move.id is None:
        raise InvalidMove("only a recorded move (with an id) can be reversed")
    if move.kind is MoveKind.REVERSAL:
        raise InvalidMove(f"move {move.id} is itself a reversal; post the original move again instead")
    return MoveRequest(
        idempotency_key=f"reversal:{move.id}",
        kind=MoveKind.REVERSAL,
        item=move.item,
        qty=move.qty,
        from_location=move.to_location,
        to_location=move.from_location,
        lot=move.lot,
        value=move.value,
        actor=actor,
        reason=reason,
        provenance=Provenance.MANUAL,
        effective_at=effective_at,
        reference=move.reference,
        reverses=move.id,
        serials=move.serials,
    )


def move_serials(states: MutableMapping[tuple[str, str], SerialState], request: MoveRequest) -> None:
    """Track ``request.serials`` in ``states`` (keyed by item, serial); refuses before changing anything.

    An outgoing move takes units that are at its source location and lot; a move with only a destination
    brings units that are not in stock anywhere (new, or having left the ledger before).
    """
    if not request.serials:
        return
    for serial in request.serials:
        state = states.get((request.item, serial))
        if request.from_location is not None:
            if state is None or state.location != request.from_location or state.lot != request.lot:
                lot = f" lot {request.lot}" if request.lot else ""
                raise SerialUnavailable(request.item, serial, f"at {request.from_location}{lot}", state)
        elif state is not None and state.location is not None:
            raise SerialUnavailable(request.item, serial, "not in stock (it is being received)", state)
    for serial in request.serials:
        states[(request.item, serial)] = SerialState(request.lot, request.to_location)
