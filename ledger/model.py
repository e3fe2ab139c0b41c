"""The stock ledger's pure core: items, locations, move requests, balances and the moving-average ``post``.

Invariants (``post`` keeps them on any balance map; ``ledger.repository.check`` verifies them in the database):
- A move carries a positive quantity from one balance (``from_location``) to another (``to_location``); either
  side may be outside the ledger (a receipt has no source, an issue no destination), never both.
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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from mes_common.errors import DomainError
from mes_common.money import CENTS, ZERO, fmt, fmt_qty, mul_cents, take_share, unit_cost
from mes_common.provenance import Provenance

QTY_PLACES = 6
MAX_KEY_LENGTH = 200


class ItemKind(StrEnum):
    RAW = "raw"
    SEMI = "semi"
    FINISHED = "finished"
    CONSUMABLE = "consumable"


class LocationKind(StrEnum):
    STORES = "stores"
    WIP = "wip"
    FINISHED = "finished"
    SCRAP = "scrap"
    QUARANTINE = "quarantine"


class MoveKind(StrEnum):
    RECEIPT = "receipt"  # into stock from outside (purchase, production output, opening balance)
    ISSUE = "issue"  # out of stock to production or consumption
    TRANSFER = "transfer"  # between two locations, same lot, same value
    ADJUSTMENT = "adjustment"  # cycle count: in (to_location) or out (from_location)
    QUARANTINE_RETURN = "quarantine_return"  # a return received into a quarantine location, held until inspected
    QUARANTINE_ACCEPT = "quarantine_accept"  # inspected good: quarantine -> usable location
    QUARANTINE_REJECT = "quarantine_reject"  # inspected bad: quarantine -> scrap location, or written off
    REVERSAL = "reversal"  # the opposite of an earlier move, at its value


# Which sides each kind needs: (from_location, to_location); None = either (exactly one of them for adjustments).
_SIDES: dict[MoveKind, tuple[bool | None, bool | None]] = {
    MoveKind.RECEIPT: (False, True),
    MoveKind.ISSUE: (True, False),
    MoveKind.TRANSFER: (True, True),
    MoveKind.ADJUSTMENT: (None, None),
    MoveKind.QUARANTINE_RETURN: (False, True),
    MoveKind.QUARANTINE_ACCEPT: (True, True),
    MoveKind.QUARANTINE_REJECT: (True, None),
    MoveKind.REVERSAL: (None, None),
}


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    uom: str
    kind: ItemKind


@dataclass(frozen=True)
class Location:
    code: str
    name: str
    kind: LocationKind


class BalanceKey(NamedTuple):
    """A valuation unit. ``lot`` is ``""`` when the item is not lot-controlled. Sorts in the lock order."""

    item: str
    location: str
    lot: str = ""


@dataclass(frozen=True)
class Balance:
    key: BalanceKey
    qty: Decimal = ZERO
    value: Decimal = ZERO

    @property
    def average(self) -> Decimal:
        """Moving-average unit cost at full precision (zero for an empty balance)."""
        return unit_cost(self.value, self.qty)


class InvalidMove(DomainError):
    """A move request that cannot be posted whatever the stock (bad quantity, missing location...)."""


class InsufficientStock(DomainError):
    code = "insufficient_stock"

    def __init__(self, item: str, location: str, lot: str, requested: Decimal, available: Decimal) -> None:
        self.item, self.location, self.lot = item, location, lot
        self.requested, self.available = requested, available
        lot_text = f" lot {lot}" if lot else ""
        super().__init__(
            f"insufficient stock of {item}{lot_text} at {location}: requested {fmt_qty(requested)}, "
            f"available {fmt_qty(available)}"
        )


class MoveConflict(DomainError):
    code = "move_conflict"

    def __init__(self, idempotency_key: str, differences: list[str]) -> None:
        self.idempotency_key = idempotency_key
        self.differences = differences
        super().__init__(
            f"idempotency key {idempotency_key!r} was already used for a different move ({'; '.join(differences)})"
        )


class UnknownItem(DomainError):
    code = "unknown_item"

    def __init__(self, item: str) -> None:
        self.item = item
        super().__init__(f"unknown item {item!r}")


class UnknownLocation(DomainError):
    code = "unknown_location"

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(f"unknown location {location!r}")


class UnknownMove(DomainError):
    code = "unknown_move"

    def __init__(self, move_id: int) -> None:
        self.move_id = move_id
        super().__init__(f"unknown stock move {move_id}")


class AlreadyReversed(DomainError):
    code = "already_reversed"


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


@dataclass(frozen=True, kw_only=True)
class MoveRequest:
    """A command to move stock. ``value`` is the total value (cents) of an incoming move; derived when None."""

    idempotency_key: str
    kind: MoveKind
    item: str
    qty: Decimal
    from_location: str | None = None
    to_location: str | None = None
    lot: str = ""
    value: Decimal | None = None
    actor: str = "system"
    reason: str = ""
    provenance: Provenance = Provenance.MANUAL
    effective_at: datetime | None = None  # when it happened (event source time); None = when recorded
    reference: str | None = None  # event id, work order, import file
    reverses: int | None = None  # id of the move a REVERSAL undoes
    serials: tuple[str, ...] = ()  # serial numbers of the units moved (one per unit), for serial-tracked stock

    def __post_init__(self) -> None:
        what = f"move {self.idempotency_key!r} ({self.kind} of {self.item})"
        if not self.idempotency_key or len(self.idempotency_key) > MAX_KEY_LENGTH:
            raise InvalidMove(f"{what}: idempotency key must be 1 to {MAX_KEY_LENGTH} characters")
        if not isinstance(self.qty, Decimal) or not self.qty.is_finite() or self.qty <= 0:
            raise InvalidMove(f"{what}: quantity must be a positive Decimal, got {self.qty!r}")
        if _places(self.qty) > QTY_PLACES:
            raise InvalidMove(f"{what}: quantity {self.qty} has more than {QTY_PLACES} decimal places")
        if self.value is not None:
            if not isinstance(self.value, Decimal) or not self.value.is_finite() or self.value < 0:
                raise InvalidMove(f"{what}: value must be a Decimal of at least 0, got {self.value!r}")
            if self.value != self.value.quantize(CENTS):
                raise InvalidMove(f"{what}: value {self.value} is not in cents")
        if self.effective_at is not None and self.effective_at.tzinfo is None:
            raise InvalidMove(f"{what}: effective time {self.effective_at.isoformat()} has no timezone")
        need_from, need_to = _SIDES[self.kind]
        has_from, has_to = self.from_location is not None, self.to_location is not None
        if need_from is not None and has_from != need_from:
            raise InvalidMove(f"{what}: a {self.kind} {'needs' if need_from else 'takes no'} from_location")
        if need_to is not None and has_to != need_to:
            raise InvalidMove(f"{what}: a {self.kind} {'needs' if need_to else 'takes no'} to_location")
        if not has_from and not has_to:
            raise InvalidMove(f"{what}: needs a from_location or a to_location")
        if self.kind is MoveKind.ADJUSTMENT and has_from and has_to:
            raise InvalidMove(f"{what}: an adjustment is either in (to_location) or out (from_location), not both")
        if has_from and has_to and self.from_location == self.to_location:
            raise InvalidMove(f"{what}: from and to are the same location {self.from_location}")
        if (self.kind is MoveKind.REVERSAL) != (self.reverses is not None):
            raise InvalidMove(f"{what}: only a reversal, and every reversal, names the move it reverses")
        if self.value is not None and has_from and self.kind is not MoveKind.REVERSAL:
            raise InvalidMove(f"{what}: the value of an outgoing move is derived from the balance, do not give it")
        if self.serials:
            if not isinstance(self.serials, tuple) or len(set(self.serials)) != len(self.serials):
                raise InvalidMove(f"{what}: serial numbers must be a tuple without repeats")
            if Decimal(len(self.serials)) != self.qty:
                raise InvalidMove(f"{what}: {len(self.serials)} serial numbers for a quantity of {fmt_qty(self.qty)}")
            if any(not s or len(s) > 64 or s != s.strip() for s in self.serials):
                raise InvalidMove(f"{what}: a serial number is empty, longer than 64 or has surrounding spaces")

    @property
    def from_key(self) -> BalanceKey | None:
        return None if self.from_location is None else BalanceKey(self.item, self.from_location, self.lot)

    @property
    def to_key(self) -> BalanceKey | None:
        return None if self.to_location is None else BalanceKey(self.item, self.to_location, self.lot)

    def balance_keys(self) -> list[BalanceKey]:
        return [k for k in (self.from_key, self.to_key) if k is not None]


# Fields of a request that make up "the same move" for idempotency (actor, reason, provenance may differ on retry).
CONTENT_FIELDS = (
    "kind", "item", "qty", "from_location", "to_location", "lot", "value", "reference", "reverses", "serials",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PostedMove:
    """A move as recorded: the request's fields, the value actually moved, and when it was recorded."""

    idempotency_key: str
    kind: MoveKind
    item: str
    qty: Decimal
    from_location: str | None
    to_location: str | None
    lot: str
    value: Decimal  # the value moved (cents)
    requested_value: Decimal | None  # the value the request gave, if any
    actor: str
    reason: str
    provenance: Provenance
    effective_at: datetime
    recorded_at: datetime
    reference: str | None = None
    reverses: int | None = None
    serials: tuple[str, ...] = ()
    id: int | None = field(default=None, compare=False)

    @property
    def from_key(self) -> BalanceKey | None:
        return None if self.from_location is None else BalanceKey(self.item, self.from_location, self.lot)

    @property
    def to_key(self) -> BalanceKey | None:
        return None if self.to_location is None else BalanceKey(self.item, self.to_location, self.lot)

    def differences(self, request: MoveRequest) -> list[str]:
        """How ``request`` differs in content from this move (empty: a retry of the same move)."""
        diffs = []
        for name in CONTENT_FIELDS:
            mine = self.requested_value if name == "value" else getattr(self, name)
            theirs = getattr(request, name)
            if mine != theirs:
                diffs.append(f"{name}: recorded {_show(mine)}, now {_show(theirs)}")
        if request.effective_at is not None and request.effective_at != self.effective_at:
            diffs.append(
                f"effective_at: recorded {self.effective_at.isoformat()}, now {request.effective_at.isoformat()}"
            )
        return diffs

    def with_id(self, move_id: int) -> PostedMove:
        return replace(self, id=move_id)


def _show(value: object) -> str:
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return "none" if value is None else str(value)


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


def post_trusted(
    balances: MutableMapping[BalanceKey, Balance], *, idempotency_key: str, kind: MoveKind, item: str, qty: Decimal,
    location: str, value: Decimal | None, actor: str, reason: str, provenance: Provenance, effective_at: datetime,
    reference: str | None, recorded_at: datetime,
) -> PostedMove:
    """``post`` of an ISSUE (from ``location``, ``value`` None) or a RECEIPT (into ``location`` at ``value``) of
    an unlotted item without serials, for a caller that builds only valid requests (a hot path: it skips building
    and re-validating a ``MoveRequest``). Same arithmetic and refusals as ``post``; returns what ``post`` returns.

    The caller guarantees what ``MoveRequest`` checks: a key of 1 to 200 characters, ``qty`` a positive
    ``Decimal`` of at most six places, ``value`` (receipts) a non-negative amount in cents, ``effective_at`` aware.
    """
    key = BalanceKey(item, location)
    found = balances.get(key)
    balance = found if found is not None else Balance(key)
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
    move = object.__new__(PostedMove)  # the dataclass __init__ of a frozen class costs one setattr per field
    move.__dict__.update(
        idempotency_key=idempotency_key, kind=kind, item=item, qty=qty, from_location=from_location,
        to_location=to_location, lot="", value=moved, requested_value=value, actor=actor, reason=reason,
        provenance=provenance, effective_at=effective_at, recorded_at=recorded_at, reference=reference, reverses=None,
        serials=(), id=None,
    )
    return move


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


@dataclass(frozen=True)
class SerialState:
    """Where one serial-numbered unit is: its lot, and its location (None once it left the ledger)."""

    lot: str
    location: str | None


class SerialUnavailable(DomainError):
    code = "serial_unavailable"

    def __init__(self, item: str, serial: str, expected: str, state: SerialState | None) -> None:
        self.item, self.serial = item, serial
        if state is None or state.location is None:
            where = "not in stock"
        else:
            where = f"at {state.location}" + (f" lot {state.lot}" if state.lot else "")
        super().__init__(f"serial {serial} of {item} is {where}, expected {expected}")


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
