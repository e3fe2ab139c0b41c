"""Daily balance checkpoints of the cost journal (see ``mes_common.checkpoints`` for the rule and the formula).

Keys: a WIP line counts per (account, work order, operation, work center, provenance); every other account's
lines count per account alone (the reports ask for their totals, and a key per order would grow with every order
ever made). Values: the balance (debit positive) and its split by cost element, signed the same way. A WIP key
whose balance and split are all zero (a closed order, an operation with nothing waiting) is left out of the
checkpoints; an account's total is kept even at zero (``balances`` lists every account that has lines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Integer, String, case, func, literal_column, select, type_coerce
from sqlalchemy.engine import Engine

from ledger.checkpoints import STOCK
from mes_common.checkpoint_build import BuildResult, refresh
from mes_common.checkpoints import Source, checkpoint_tables
from mes_common.db import Money
from wip_costing.journal import ELEMENTS, Account
from wip_costing.tables import CODE, LineId, journal_lines

KEYS = ("account", "work_order", "operation", "work_center", "provenance")
VALUES = ("amount", *(element.value for element in ELEMENTS))


journal_checkpoints, journal_corrections = checkpoint_tables(
    "journal",
    keys=[Column("account", String(32), nullable=False), Column("work_order", String(CODE), nullable=True),
          Column("operation", Integer(), nullable=True), Column("work_center", String(CODE), nullable=True),
          Column("provenance", String(16), nullable=True)],
    values=[Column(name, Money(), nullable=False) for name in VALUES],
    id_type=LineId,
)

_WIP: Any = literal_column(f"'{Account.WIP.value}'")


def _sums(where: Sequence[Any], key_filter: Mapping[str, Any], with_time: bool) -> Any:
    c = journal_lines.c
    wip = c.account == _WIP
    keys = [
        c.account.label("account"),
        case((wip, c.work_order)).label("work_order"),
        case((wip, c.operation)).label("operation"),
        case((wip, c.work_center)).label("work_center"),
        case((wip, c.provenance)).label("provenance"),
    ]
    if with_time:
        keys.append(c.effective_at.label("effective_at"))
    amounts = [type_coerce(func.coalesce(func.sum(c.debit), 0) - func.coalesce(func.sum(c.credit), 0),
                           Money()).label("amount")]
    amounts += [type_coerce(func.coalesce(func.sum(case((c.debit > 0, c[name]), else_=-c[name])), 0),
                            Money()).label(name) for name in VALUES[1:]]
    filters = [c[name] == value for name, value in key_filter.items()]
    return select(*keys, *amounts).where(*where, *filters).group_by(*keys)


JOURNAL = Source(
    name="journal",
    rows=journal_lines,
    checkpoints=journal_checkpoints,
    corrections=journal_corrections,
    keys=KEYS,
    values=VALUES,
    value_types=(Money,) * len(VALUES),
    sums=_sums,
    keep_zero=lambda key: key[1] is None,
    brin_indexes=("ix_journal_lines_effective_at",),
)


def refresh_journal(engine: Engine, **options: Any) -> BuildResult:
    return refresh(engine, [JOURNAL], **options)[0]


def refresh_all(engine: Engine, **options: Any) -> list[BuildResult]:
    """The journal's and the stock ledger's checkpoints (``mes-bridge reports checkpoint``, the worker)."""
    return refresh(engine, [JOURNAL, STOCK], **options)
