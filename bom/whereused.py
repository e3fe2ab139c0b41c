"""Where-used (multi-level implosion): every released parent that consumes an item, up to the top.

Rows come in pre-order from the item upwards: level 1 are the direct parents, level 2 their parents...
``qty`` is the item's quantity per ONE unit of that row's parent, compounded over the levels with scrap
(fixed-quantity lines count their quantity as given). Uses the structure effective on ``as_of``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bom.model import BomVersion, CycleError
from bom.structure import BomIndex

# Recursion depth bound: a released structure is acyclic, so deeper means corrupted data.
MAX_DEPTH = 500


@dataclass(frozen=True, slots=True)
class WhereUsedRow:
    level: int
    parent: str
    revision: str
    component: str  # the child of ``parent`` on this path
    qty_per: Decimal
    operation: int | None
    phantom: bool
    qty: Decimal  # of the imploded item per unit of ``parent``
    path: tuple[str, ...]  # from the imploded item up to ``parent``


def where_used(index: BomIndex, item: str, as_of: date) -> list[WhereUsedRow]:
    return where_used_from(index.parents_of(as_of), item, Decimal(1), 1, (item,), as_of)


def where_used_from(
    parents: Mapping[str, list[tuple[BomVersion, int]]],
    item: str,
    qty: Decimal,
    level: int,
    path: tuple[str, ...],
    as_of: date,
) -> list[WhereUsedRow]:
    rows: list[WhereUsedRow] = []
    if level > MAX_DEPTH:
        raise CycleError(list(path[-MAX_DEPTH:]), as_of)
    for version, line_index in sorted(parents.get(item, ()), key=lambda entry: (entry[0].item, entry[1])):
        line = version.lines[line_index]
        per_parent = line.gross_qty * qty
        row_path = (*path, version.item)
        rows.append(WhereUsedRow(level, version.item, version.revision, item, line.qty_per, line.operation,
                                 line.phantom, per_parent, row_path))
        rows.extend(where_used_from(parents, version.item, per_parent, level + 1, row_path, as_of))
    return rows
