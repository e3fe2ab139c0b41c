"""daily balance checkpoints of the cost journal and of the stock ledger

Revision ID: 0010_balance_checkpoints
Revises: 0009_api_tokens

Written by hand to match ``mes_common/checkpoints.py``, ``wip_costing/checkpoints.py`` and
``ledger/checkpoints.py`` (``tests/integration/test_schema.py`` checks it). New tables only, plus an index on
``stock_moves.effective_at`` (block-range on PostgreSQL), and the journal's block-range index summarises new
ranges automatically; no existing row changes. The checkpoints are derived:
``mes-bridge reports checkpoint`` builds them after the upgrade (until then reports sum the rows, as before).
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import money, qty, utc_datetime

revision = "0010_balance_checkpoints"
down_revision = "0009_api_tokens"
branch_labels = None
depends_on = None

CODE = 64
ELEMENTS = ("material", "setup", "labor", "machine", "energy")


def _id() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _journal_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("work_order", sa.String(CODE), nullable=True),
        sa.Column("operation", sa.Integer(), nullable=True),
        sa.Column("work_center", sa.String(CODE), nullable=True),
        sa.Column("provenance", sa.String(16), nullable=True),
        sa.Column("amount", money(), nullable=False),
        *(sa.Column(name, money(), nullable=False) for name in ELEMENTS),
    ]


def _stock_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("item", sa.String(CODE), nullable=False),
        sa.Column("location", sa.String(CODE), nullable=False),
        sa.Column("lot", sa.String(CODE), nullable=False),
        sa.Column("qty", qty(), nullable=False),
        sa.Column("value", money(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "checkpoint_days",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("until", utc_datetime(), nullable=False),
        sa.Column("through_id", sa.BigInteger(), nullable=False),
        sa.Column("built_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "day", name="pk_checkpoint_days"),
    )
    op.create_table(
        "checkpoint_state",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("through_id", sa.BigInteger(), nullable=False),
        sa.Column("covered_day", sa.Date(), nullable=True),
        sa.Column("built_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_checkpoint_state"),
    )
    op.create_table("journal_checkpoints", sa.Column("day", sa.Date(), nullable=False), *_journal_columns())
    op.create_index("ix_journal_checkpoints_day_account", "journal_checkpoints", ["day", "account"])
    op.create_table("journal_checkpoint_corrections", sa.Column("through_id", _id(), nullable=False),
                    sa.Column("day", sa.Date(), nullable=False), *_journal_columns())
    op.create_index("ix_journal_checkpoint_corrections_through_id", "journal_checkpoint_corrections",
                    ["through_id"])
    op.create_table("stock_checkpoints", sa.Column("day", sa.Date(), nullable=False), *_stock_columns())
    op.create_index("ix_stock_checkpoints_day_item", "stock_checkpoints", ["day", "item"])
    op.create_table("stock_checkpoint_corrections", sa.Column("through_id", _id(), nullable=False),
                    sa.Column("day", sa.Date(), nullable=False), *_stock_columns())
    op.create_index("ix_stock_checkpoint_corrections_through_id", "stock_checkpoint_corrections", ["through_id"])
    op.create_index("ix_stock_moves_effective_at", "stock_moves", ["effective_at"], postgresql_using="brin",
                    postgresql_with={"autosummarize": "on", "pages_per_range": "16"})
    if op.get_bind().dialect.name == "postgresql":
        # A block range of new lines is skipped by a time-range query only once summarised: ask autovacuum to
        # summarise each range as soon as it is full (the checkpoint build also summarises the new ones).
        op.execute("ALTER INDEX ix_journal_lines_effective_at SET (autosummarize = on)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX ix_journal_lines_effective_at RESET (autosummarize)")
    op.drop_index("ix_stock_moves_effective_at", table_name="stock_moves")
    for table in ("stock_checkpoint_corrections", "stock_checkpoints", "journal_checkpoint_corrections",
                  "journal_checkpoints", "checkpoint_state", "checkpoint_days"):
        op.drop_table(table)
