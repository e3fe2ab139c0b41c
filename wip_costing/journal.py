"""The cost journal's vocabulary: accounts, lines and balanced entries (pure; persisted by the repository).

Invariants:
- Every entry balances: the sum of its debits equals the sum of its credits, to the cent.
- Amounts are non-negative cents; a line is either a debit or a credit.
- WIP lines carry order, operation, work center, element and provenance (the provenance of the event that
  brought the value in, so "what share of WIP rests on sensors" survives transfers between operations);
  SCRAP-LOSS lines mirror them; RM-INV, ABSORBED-* and FG-INV lines carry the posting event's provenance;
  close (variance) lines are manual.
- Journal rows are never updated or deleted; corrections are new entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from mes_common.money import ZERO
from mes_common.provenance import Provenance
from wip_costing.pools import Bucket, Element


class Account(StrEnum):
    RM_INV = "RM-INV"
    WIP = "WIP"
    FG_INV = "FG-INV"
    SCRAP_LOSS = "SCRAP-LOSS"
    ABSORBED_LABOR = "ABSORBED-LABOR"
    ABSORBED_MACHINE = "ABSORBED-MACHINE"
    ABSORBED_ENERGY = "ABSORBED-ENERGY"
    VAR_MATERIAL = "VAR-MATERIAL"
    VAR_LABOR = "VAR-LABOR"
    VAR_ENERGY = "VAR-ENERGY"
    VAR_SCRAP = "VAR-SCRAP"


class EntryKind(StrEnum):
    MATERIAL = "material"
    CONVERSION = "conversion"
    SCRAP = "scrap"
    REWORK = "rework"
    TRANSFER = "transfer"
    RECEIPT = "receipt"
    CLOSE = "close"


class JournalLine(NamedTuple):
    """One side of a posting. A named tuple: thousands are built per batch, and a tuple is immutable and cheap."""

    account: Account
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    work_order: str | None = None
    operation: int | None = None
    work_center: str | None = None
    element: Element | None = None
    provenance: Provenance | None = None
    item: str | None = None
    # Index of the stock move (in the posting's list of moves) this line values; the id once written.
    move_index: int | None = None


@dataclass
class JournalEntry:
    kind: EntryKind
    effective_at: datetime
    event_id: str | None
    work_order: str
    lines: list[JournalLine] = field(default_factory=list)

    @property
    def debits(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def credits(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)


def wip_lines(
    values: dict[Bucket, Decimal], *, debit: bool, order: str, operation: int, work_center: str
) -> list[JournalLine]:
    """One WIP line per non-zero bucket, on the debit or the credit side."""
    # Positional tuple construction: this builds most of the journal's lines, thousands per batch.
    new, wip = tuple.__new__, Account.WIP
    if debit:
        return [new(JournalLine, (wip, amount, ZERO, order, operation, work_center, element, provenance, None, None))
                for (element, provenance), amount in values.items() if amount]
    return [new(JournalLine, (wip, ZERO, amount, order, operation, work_center, element, provenance, None, None))
            for (element, provenance), amount in values.items() if amount]


def check_balanced(entries: Iterable[JournalEntry]) -> list[str]:
    """Unbalanced or malformed entries, described (empty when every entry is sound)."""
    problems = []
    for entry in entries:
        if entry.debits != entry.credits:
            problems.append(
                f"{entry.kind} entry of event {entry.event_id}: debits {entry.debits} != credits {entry.credits}"
            )
        for line in entry.lines:
            if line.debit < 0 or line.credit < 0 or (line.debit and line.credit):
                problems.append(f"{entry.kind} entry of event {entry.event_id}: bad line {line}")
            if line.debit != line.debit.quantize(Decimal("0.01")) or line.credit != line.credit.quantize(
                Decimal("0.01")
            ):
                problems.append(f"{entry.kind} entry of event {entry.event_id}: amount not in cents {line}")
    return problems
