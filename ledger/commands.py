"""Commands of the stock ledger: what a caller (CLI, API, demo) asks for, as plain frozen dataclasses.

A move command without ``key`` gets a new idempotency key when it is built, so a retry of the same command object
(after a transaction lost a race) is recognised as the same move. Quantities and amounts are ``Decimal``; text
from a user is parsed by the caller. Handled by ``ledger.handlers``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from mes_common.provenance import Provenance


def new_key() -> str:
    return f"manual:{uuid.uuid4()}"


@dataclass(frozen=True, kw_only=True)
class MoveCommand:
    """What every manual move carries: who, why, when it happened, its idempotency key."""

    item: str
    actor: str
    reason: str
    lot: str = ""
    effective_at: datetime | None = None  # when it happened; None = when recorded
    key: str = field(default_factory=new_key)
    provenance: Provenance = Provenance.MANUAL
    reference: str | None = None


@dataclass(frozen=True, kw_only=True)
class PostReceipt(MoveCommand):
    """Receive ``qty`` into ``to_location`` at a total ``value`` (cents) or a ``unit_cost`` (exactly one); a
    ``quarantine`` return is held in a quarantine location and needs neither."""

    qty: Decimal
    to_location: str
    value: Decimal | None = None
    unit_cost: Decimal | None = None
    quarantine: bool = False
    serials: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PostIssue(MoveCommand):
    qty: Decimal
    from_location: str
    serials: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PostTransfer(MoveCommand):
    qty: Decimal
    from_location: str
    to_location: str
    serials: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PostCount(MoveCommand):
    """A cycle count at ``location``: the quantity ``counted`` (the difference is taken against the balance as it
    stands when posted) or the ``delta`` found (exactly one)."""

    location: str
    counted: Decimal | None = None
    delta: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class DecideQuarantine(MoveCommand):
    """Release quarantined stock: accept it into ``accept_to`` or reject it into the scrap location ``reject_to``
    (exactly one)."""

    qty: Decimal
    from_location: str
    accept_to: str | None = None
    reject_to: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReverseMove:
    move_id: int
    actor: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ImportCsv:
    """A CSV file to import: its bytes (``name`` shown in errors) or a path. ``dry_run``: say what the import
    would change, write nothing. ``progress``: called with the bytes of each line read (large files)."""

    source: bytes | Path
    name: str | None = None
    dry_run: bool = False
    progress: Callable[[int], None] | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True)
class ImportItems(ImportCsv):
    actor: str


@dataclass(frozen=True, kw_only=True)
class ImportLocations(ImportCsv):
    actor: str


@dataclass(frozen=True, kw_only=True)
class ImportBalances(ImportCsv):
    """Opening balances dated ``effective_at`` (default: the start of the ledger's time); a balance imported
    before with other figures is refused, or its quantity difference posted as a count adjustment with
    ``adjust_reason``."""

    actor: str
    effective_at: datetime | None = None
    adjust_reason: str | None = None
