"""The stock ledger's pure core, its types: items, locations, balances, move requests, recorded moves, errors.

The rules that apply a move to balances (moving average, serial tracking) are in ``ledger.posting``.

Invariants (``MoveRequest`` refuses, with ``InvalidMove``, any request that breaks them; ``ledger.queries.check``
verifies the database):
- A move carries a positive quantity (a ``Decimal`` of at most ``QTY_PLACES`` places) from one balance
  (``from_location``) to another (``to_location``); either side may be outside the ledger (a receipt has no
  source, an issue no destination), never both. Which sides a move needs depends on its ``MoveKind``.
- A value, when given, is in cents and only on an incoming move (or a ``REVERSAL``): an outgoing move's value
  is derived from the balance.
- Moves are never changed; a correction is a ``REVERSAL``, which names the move it undoes.
- A serial-tracked move lists one distinct serial number per unit moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from mes_common.errors import DomainError
from mes_common.limits import CODE_LENGTH, MAX_QTY, MAX_VALUE, out_of_range, too_long
from mes_common.money import CENTS, ZERO, fmt, fmt_qty, unit_cost
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


class Balance(NamedTuple):
    """The quantity and value of one valuation unit. A named tuple: immutable, and cheap to build on the hot path."""

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


def decimal_places(value: Decimal) -> int:
    """How many places ``value`` is written with (0 for a whole number or an exponent form like 1E+3)."""
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
        what = f"move {self.idempotency_key[:80]!r} ({self.kind} of {self.item[:80]})"
        if not self.idempotency_key or len(self.idempotency_key) > MAX_KEY_LENGTH:
            raise InvalidMove(f"{what}: idempotency key must be 1 to {MAX_KEY_LENGTH} characters")
        if not isinstance(self.qty, Decimal) or not self.qty.is_finite() or self.qty <= 0:
            raise InvalidMove(f"{what}: quantity must be a positive Decimal, got {self.qty!r}")
        if self.qty > MAX_QTY:
            raise InvalidMove(f"{what}: quantity {out_of_range(self.qty, maximum=MAX_QTY, above=True)}")
        if decimal_places(self.qty) > QTY_PLACES:
            raise InvalidMove(f"{what}: quantity {self.qty} has more than {QTY_PLACES} decimal places")
        for name, code in (("item", self.item), ("lot", self.lot), ("from_location", self.from_location),
                           ("to_location", self.to_location), ("actor", self.actor)):
            if code is not None and len(code) > CODE_LENGTH:
                raise InvalidMove(f"{what}: {name} {too_long(code, CODE_LENGTH)}")
        if len(self.reason) > 500 or (self.reference is not None and len(self.reference) > MAX_KEY_LENGTH):
            raise InvalidMove(f"{what}: reason is longer than 500 or reference longer than {MAX_KEY_LENGTH} characters")
        if self.value is not None:
            if not isinstance(self.value, Decimal) or not self.value.is_finite() or self.value < 0:
                raise InvalidMove(f"{what}: value must be a Decimal of at least 0, got {self.value!r}")
            if self.value > MAX_VALUE:
                raise InvalidMove(f"{what}: value {out_of_range(self.value, maximum=MAX_VALUE, places=2)}")
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


class PostedMove(NamedTuple):
    """A move as recorded: the request's fields, the value actually moved, and when it was recorded.

    A named tuple: immutable, and cheap to build (the event path builds one per component issue and receipt; a
    frozen dataclass's ``__init__`` costs a ``setattr`` per field). Build it with keywords. ``id`` is None until the
    move is written (``with_id``); ``differences`` compares a move's content with a request's.
    """

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
    id: int | None = None

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
        return self._replace(id=move_id)


def _show(value: object) -> str:
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return "none" if value is None else str(value)


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
