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
from bom.structure import BomIndex

# Recursion depth bound: a released structure is acyclic, so deeper means corrupted data.
MAX_DEPTH = 500


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
    """The implosion of ``item`` on ``as_of``, memoised on the snapshot with every item's implosion it was built
    from: a parent's rows are built once per snapshot and day, and an item's are its direct parents' rows scaled
    by its quantity per parent (``where_used_from`` is the plain walk they equal)."""
    key = ("where-used", as_of)
    memo = index.memo.get(key)
    if memo is None:
        memo = index.memo[key] = {}
    return list(_implode(index.parents_of(as_of), item, as_of, memo, (item,)))


def _implode(parents: Mapping[str, list[tuple[BomVersion, int]]], item: str, as_of: date,
             memo: dict[str, list[WhereUsedRow]], path: tuple[str, ...]) -> list[WhereUsedRow]:
    found = memo.get(item)
    if found is not None:
        return found
    if len(path) > MAX_DEPTH:
        raise CycleError(list(path[-MAX_DEPTH:]), as_of)
    rows: list[WhereUsedRow] = []
    for version, line_index in _sorted(parents, item):
        line = version.lines[line_index]
        per_parent = line.gross_qty
        parent = version.item
        rows.append(WhereUsedRow(1, parent, version.revision, item, line.qty_per, line.operation, line.phantom,
                                 per_parent, (item, parent)))
        if parent in path:
            raise CycleError([*path, parent], as_of)
        for up in _implode(parents, parent, as_of, memo, (*path, parent)):
            rows.append(WhereUsedRow(up.level + 1, up.parent, up.revision, up.component, up.qty_per, up.operation,
                                     up.phantom, up.qty * per_parent, (item, *up.path)))
    memo[item] = rows
    return rows


def _sorted(parents: Mapping[str, list[tuple[BomVersion, int]]], item: str) -> list[tuple[BomVersion, int]]:
    return sorted(parents.get(item, ()), key=lambda entry: (entry[0].item, entry[1]))


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
