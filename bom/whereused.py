"""Where-used (multi-level implosion): every released parent that consumes an item, up to the top.

Rows come in pre-order from the item upwards: level 1 are the direct parents, level 2 their parents...
``qty`` is the item's quantity per ONE unit of that row's parent, compounded over the levels with scrap
(fixed-quantity lines count their quantity as given). Uses the structure effective on ``as_of``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from bom.model import BomVersion, CycleError
from bom.structure import BomIndex, ParentLine

# Recursion depth bound: a released structure is acyclic, so deeper means corrupted data.
MAX_DEPTH = 500
MEMO_SIZE = 256


class WhereUsedRow(NamedTuple):
    """One row of an implosion. A named tuple: an implosion builds hundreds per query, and a tuple is immutable
    and cheap to build."""

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
    """The implosion of ``item`` on ``as_of``: a walk up ``BomIndex.parent_lines`` (built once per snapshot and
    day: parents already sorted, gross quantities worked out, each line linked to its parent's lines), so a
    query builds its rows and little else; the answer is kept on the snapshot for the next query of the same item
    (up to ``MEMO_SIZE`` items per day). ``where_used_from`` is the plain walk it equals (tests prove it on random
    structures and on small copies of the benchmark's shapes)."""
    key = ("where-used", as_of)
    memo = index.memo.get(key)
    if memo is None:
        memo = index.memo[key] = {}
    found = memo.get(item)
    if found is None:
        rows: list[WhereUsedRow] = []
        _up(index.parent_lines(as_of).get(item, []), item, Decimal(1), 1, (item,), rows, as_of)
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        found = memo[item] = tuple(rows)
    return list(found)


def _up(lines: list[ParentLine], item: str, qty: Decimal, level: int, path: tuple[str, ...],
        rows: list[WhereUsedRow], as_of: date) -> None:
    if level > MAX_DEPTH:
        raise CycleError(list(path[-MAX_DEPTH:]), as_of)
    append = rows.append
    make = WhereUsedRow._make  # one argument: cheaper to call than the nine-argument constructor
    for parent, revision, qty_per, operation, phantom, gross, above in lines:
        if parent in path:
            raise CycleError([*path, parent], as_of)
        per_parent = gross * qty
        row_path = (*path, parent)
        append(make((level, parent, revision, item, qty_per, operation, phantom, per_parent, row_path)))
        if above:
            _up(above, parent, per_parent, level + 1, row_path, rows, as_of)


def where_used_from(
    parents: Mapping[str, list[tuple[BomVersion, int]]],
    item: str,
    qty: Decimal,
    level: int,
    path: tuple[str, ...],
    as_of: date,
) -> list[WhereUsedRow]:
    """The plain recursive walk (the reference ``where_used`` equals): rows for ``qty`` of ``item`` at ``level``."""
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
