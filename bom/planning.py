"""Planner's net requirements: explode a production plan and net it against stock and open work orders.

Rules:
- Availability of an item starts at ``on_hand - open_needs`` (open needs: quantities open work orders
  still have to consume; a negative start is already a shortage).
- Plan rows are taken by due date (then in file order). Each demand is netted level by level: the demand
  uses what is available of the item, only the remainder (the net requirement) is exploded into its
  components with the BOM effective on the row's due date (scrap included, fixed-quantity lines once per
  demand, phantoms netted like any item and exploded through). Bought items (no effective BOM) stop there.
- ``shortage`` of a bought item = its net requirement (to buy); of a made item = its net requirement (to
  make). ``earliest_due`` is the first due date on which the item ran short.
Quantities are exact ``Decimal``. Export to CSV / Excel goes through pandas (``to_frame``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

from bom.model import BomError, CycleError
from bom.structure import BomLookup

ZERO = Decimal(0)
_CONTEXT = Context(prec=38)
MAX_DEPTH = 500


@dataclass(frozen=True, slots=True)
class PlanRow:
    item: str
    qty: Decimal
    due: date


@dataclass(frozen=True, slots=True)
class Requirement:
    component: str
    uom: str
    made: bool
    gross: Decimal
    on_hand: Decimal
    open_needs: Decimal
    net: Decimal  # shortage: to make (made) or to buy
    earliest_due: date | None

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.open_needs


@dataclass
class _Acc:
    uom: str
    made: bool = False
    gross: Decimal = ZERO
    net: Decimal = ZERO
    earliest_due: date | None = None


def net_requirements(
    lookup: BomLookup,
    plan: Sequence[PlanRow],
    on_hand: Mapping[str, Decimal],
    open_needs: Mapping[str, Decimal],
    uoms: Mapping[str, str] | None = None,
) -> list[Requirement]:
    """Net requirements per item (plan items and every component below them), sorted by item."""
    available: dict[str, Decimal] = {}
    acc: dict[str, _Acc] = {}
    uoms = uoms or {}

    def avail(code: str) -> Decimal:
        if code not in available:
            available[code] = on_hand.get(code, ZERO) - open_needs.get(code, ZERO)
        return available[code]

    def demand(code: str, qty: Decimal, uom: str, due: date, path: tuple[str, ...]) -> None:
        if len(path) > MAX_DEPTH or code in path[:-1]:
            raise CycleError(list(path), due)
        entry = acc.setdefault(code, _Acc(uom))
        entry.gross += qty
        have = avail(code)
        used = min(max(have, ZERO), qty)
        available[code] = have - used
        # A negative starting availability is owed to open orders: it adds to this shortage once.
        net = qty - used + (-have if have < 0 else ZERO)
        if have < 0:
            available[code] = ZERO
        if net <= 0:
            return
        entry.net += net
        if entry.earliest_due is None or due < entry.earliest_due:
            entry.earliest_due = due
        bom = lookup.effective(code, due)
        if bom is None:
            return
        entry.made = True
        for line in bom.lines:
            need = line.gross_qty if line.fixed_qty else net * line.gross_qty
            demand(line.component, need, line.uom, due, (*path, line.component))

    with localcontext(_CONTEXT):
        for position, row in sorted(enumerate(plan), key=lambda pair: (pair[1].due, pair[0])):
            if not isinstance(row.qty, Decimal) or row.qty <= 0:
                raise BomError(f"plan row {position + 1}: {row.item} quantity must be positive, got {row.qty!r}")
            if lookup.effective(row.item, row.due) is None:
                raise BomError(f"plan row {position + 1}: no released BOM of {row.item} is effective on "
                               f"{row.due.isoformat()}")
            demand(row.item, row.qty, uoms.get(row.item, ""), row.due, (row.item,))
    return [
        Requirement(code, a.uom, a.made, a.gross, on_hand.get(code, ZERO), open_needs.get(code, ZERO), a.net,
                    a.earliest_due)
        for code, a in sorted(acc.items())
    ]


def shortages(requirements: Sequence[Requirement]) -> list[Requirement]:
    return [r for r in requirements if r.net > 0]


COLUMNS = ("component", "uom", "made", "gross", "on_hand", "open_needs", "available", "net", "earliest_due")


def qty_value(qty: Decimal, text: bool) -> Any:
    """A quantity for export: a plain decimal string (CSV, JSON) or a normalised ``Decimal`` (Excel cells;
    openpyxl writes it as a number without a float round trip in our code)."""
    from mes_common.money import fmt_qty

    shown = fmt_qty(qty)
    return shown if text else Decimal(shown)


def to_records(requirements: Sequence[Requirement], text: bool = True) -> list[dict[str, Any]]:
    return [
        {"component": r.component, "uom": r.uom, "made": r.made, "gross": qty_value(r.gross, text),
         "on_hand": qty_value(r.on_hand, text), "open_needs": qty_value(r.open_needs, text),
         "available": qty_value(r.available, text), "net": qty_value(r.net, text),
         "earliest_due": r.earliest_due.isoformat() if r.earliest_due else ""}
        for r in requirements
    ]


def to_frame(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Any:
    """A pandas DataFrame of ``records`` (quantities stay decimal strings: Excel and CSV show them exactly)."""
    import pandas as pd

    return pd.DataFrame(list(records), columns=list(columns))


def export(
    records: Sequence[Mapping[str, Any]], columns: Sequence[str], path: Path, fmt: str, sheet: str = "requirements"
) -> None:
    frame = to_frame(records, columns)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "xlsx":
        frame.to_excel(path, index=False, sheet_name=sheet, engine="openpyxl")
    else:
        raise BomError(f"unknown export format {fmt!r} (csv or xlsx)")
