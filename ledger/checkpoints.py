"""Daily checkpoints of stock on hand per item x location x lot (see ``mes_common.checkpoints`` for the rule and
the formula): a move counts + at its destination and - at its source, in quantity and value. A key with nothing
left (quantity and value zero) is left out of the checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Index, String, case, func, literal_column, select, true, type_coerce, union_all
from sqlalchemy.engine import Engine

from ledger.tables import CODE, MoveId, stock_moves
from mes_common.checkpoint_build import BuildResult, refresh
from mes_common.checkpoints import Source, checkpoint_tables
from mes_common.db import Money, Qty

KEYS = ("item", "location", "lot")
VALUES = ("qty", "value")


stock_checkpoints, stock_corrections = checkpoint_tables(
    "stock",
    keys=[Column("item", String(CODE), nullable=False), Column("location", String(CODE), nullable=False),
          Column("lot", String(CODE), nullable=False)],
    values=[Column("qty", Qty(), nullable=False), Column("value", Money(), nullable=False)],
    id_type=MoveId,
)


# The two sides of a move: +1 counts at its destination, -1 at its source.
_SIDES = union_all(select(literal_column("1").label("sign")),
                   select(literal_column("-1").label("sign"))).subquery("sides")


def _sums(where: Sequence[Any], key_filter: Mapping[str, Any], with_time: bool) -> Any:
    """Both sides of every move from one scan of the moves (each move joined with the two signs), grouped in the
    database. Two scans, one per side, made PostgreSQL start parallel workers for each of them, which cost more
    than summing the few thousand moves of a day (``benchmarks/RESULTS-reports.md``)."""
    m, sign = stock_moves.c, _SIDES.c.sign
    location = case((sign > literal_column("0"), m.to_location), else_=m.from_location)
    keys = [m.item.label("item"), location.label("location"), m.lot.label("lot")]
    if with_time:
        keys.append(m.effective_at.label("effective_at"))
    filters = [location.is_not(None), *where]
    if "item" in key_filter:
        filters.append(m.item == key_filter["item"])
    if "location" in key_filter:
        filters.append(location == key_filter["location"])
    return (select(*keys, type_coerce(func.sum(sign * m.qty), Qty()).label("qty"),
                   type_coerce(func.sum(sign * m.value), Money()).label("value"))
            .select_from(stock_moves).join(_SIDES, true())
            .where(*filters).group_by(*keys))


STOCK = Source(
    name="stock",
    rows=stock_moves,
    checkpoints=stock_checkpoints,
    corrections=stock_corrections,
    keys=KEYS,
    values=VALUES,
    value_types=(Qty, Money),
    sums=_sums,
    brin_indexes=("ix_stock_moves_effective_at",),
)


def refresh_stock(engine: Engine, **options: Any) -> BuildResult:
    return refresh(engine, [STOCK], **options)[0]

# Moves effective in a time range, whatever the item (the rows after a checkpoint): a block-range index on
# PostgreSQL, as the journal's (moves arrive in about time order, and it costs next to nothing per move), with
# ranges of 16 pages (~700 moves) so that a day's moves are read with little around them.
Index("ix_stock_moves_effective_at", stock_moves.c.effective_at, postgresql_using="brin",
      postgresql_with={"autosummarize": "on", "pages_per_range": "16"})
