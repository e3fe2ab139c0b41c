"""The cost journal's vocabulary: accounts, lines and balanced entries (pure; persisted by the repository).

Invariants:
- Every entry balances: the sum of its debits equals the sum of its credits, to the cent.
- Amounts are non-negative cents; a line is either a debit or a credit.
- WIP lines carry order, operation, work center and provenance (the provenance of the event that brought the
  value in, so "what share of WIP rests on sensors" survives transfers between operations) and the split of
  their amount by cost element (``split``: one amount per ``Element``, in ``ELEMENTS`` order, summing exactly
  to the line's amount): one WIP line per posting side and provenance, not one per element. SCRAP-LOSS lines
  mirror them; variance lines carry the split of what they absorb; RM-INV, ABSORBED-* and FG-INV lines carry the
  posting event's provenance and no split.
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

# The order of a line's element split (and of the journal table's element columns).
ELEMENTS: tuple[Element, ...] = tuple(Element)
_POSITION = {element: n for n, element in enumerate(ELEMENTS)}
Split = tuple[Decimal, ...]


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
    provenance: Provenance | None = None
    item: str | None = None
    # Index of the stock move (in the posting's list of moves) this line values; the id once written.
    move_index: int | None = None
    # The line's amount by cost element (``ELEMENTS`` order, on the line's own side); None: no element.
    split: Split | None = None

    def element_amount(self, element: Element) -> Decimal:
        """This line's amount of ``element``, debit positive."""
        if self.split is None:
            return ZERO
        part = self.split[_POSITION[element]]
        return part if self.debit else -part


@dataclass(slots=True)
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


def split_of(values: dict[Bucket, Decimal]) -> dict[Provenance, list[Decimal]]:
    """``values`` (by element x provenance) as one element split per provenance (non-zero amounts only)."""
    out: dict[Provenance, list[Decimal]] = {}
    position = _POSITION
    for (element, provenance), amount in values.items():
        if amount:
            split = out.get(provenance)
            if split is None:
                split = out[provenance] = [ZERO, ZERO, ZERO, ZERO, ZERO]
            split[position[element]] += amount
    return out


def wip_credit_lines(values: dict[Bucket, Decimal], *, order: str, operation: int,
                     work_center: str) -> list[JournalLine]:
    """Value leaving WIP at ``operation``: one WIP credit line per provenance holding value, with its element
    split."""
    return mirrored_lines(values, None, None, None, order=order, operation=operation, work_center=work_center)


def mirrored_lines(
    values: dict[Bucket, Decimal], account: Account | None, to_operation: int | None, to_work_center: str | None, *,
    order: str, operation: int, work_center: str,
) -> list[JournalLine]:
    """Value leaving WIP at ``operation``: per provenance holding value, a debit line to ``account`` at
    ``to_operation`` / ``to_work_center`` (WIP of another operation, or SCRAP-LOSS; none when ``account`` is None),
    then the matching WIP credit lines; both sides of a provenance share one element split."""
    debits, credits = [], []
    for provenance, parts in split_of(values).items():
        split = tuple(parts)
        amount = parts[0] + parts[1] + parts[2] + parts[3] + parts[4]
        if account is not None:
            debits.append(JournalLine(account, amount, ZERO, order, to_operation, to_work_center, provenance, None,
                                      None, split))
        credits.append(JournalLine(Account.WIP, ZERO, amount, order, operation, work_center, provenance, None, None,
                                   split))
    return debits + credits


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
            if line.split is not None and (sum(line.split, ZERO) != line.debit + line.credit
                                           or any(part < 0 for part in line.split)):
                problems.append(f"{entry.kind} entry of event {entry.event_id}: split does not make the amount "
                                f"{line}")
    return problems
