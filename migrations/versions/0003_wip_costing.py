"""work orders, events, WIP pools, cost journal

Revision ID: 0003
Revises: 0002

Written by hand to match ``wip_costing/tables.py`` exactly (``tests/integration/test_schema.py`` checks it), plus
triggers that make ``journal_lines`` append-only (UPDATE and DELETE refused).
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import money, qty, utc_datetime
from migrations.append_only import create_triggers, drop_triggers

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CODE = 64
EVENT_ID = 200


def _line_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "work_orders",
        sa.Column("id", sa.String(CODE), nullable=False),
        sa.Column("item", sa.String(CODE), nullable=False),
        sa.Column("qty", qty(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("receiving_location", sa.String(CODE), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bom_revision", sa.String(32), nullable=True),
        sa.Column("routing_revision", sa.String(32), nullable=False),
        sa.Column("released_on", sa.Date(), nullable=False),
        sa.Column("released_at", utc_datetime(), nullable=False),
        sa.Column("closed_at", utc_datetime(), nullable=True),
        sa.Column("produced", qty(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_work_orders"),
        sa.ForeignKeyConstraint(["item"], ["items.code"], name="fk_work_orders_item_items"),
        sa.ForeignKeyConstraint(
            ["receiving_location"], ["locations.code"], name="fk_work_orders_receiving_location_locations"
        ),
        sa.CheckConstraint("qty > 0", name="ck_work_orders_qty_positive"),
    )
    op.create_table(
        "wo_operations",
        sa.Column("work_order", sa.String(CODE), nullable=False),
        sa.Column("operation", sa.Integer(), nullable=False),
        sa.Column("work_center", sa.String(CODE), nullable=False),
        sa.Column("received", qty(), nullable=False),
        sa.Column("completed_good", qty(), nullable=False),
        sa.Column("scrapped", qty(), nullable=False),
        sa.Column("reworked", qty(), nullable=False),
        sa.Column("written_off", qty(), nullable=False),
        sa.Column("setup_charged", sa.Boolean(), nullable=False),
        sa.Column("fp_qty", qty(), nullable=False),
        sa.Column("fp_value", money(), nullable=False),
        sa.Column("fp_values", sa.Text(), nullable=False),
        sa.Column("rw_qty", qty(), nullable=False),
        sa.Column("rw_value", money(), nullable=False),
        sa.Column("rw_values", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("work_order", "operation", name="pk_wo_operations"),
        sa.ForeignKeyConstraint(["work_order"], ["work_orders.id"], name="fk_wo_operations_work_order_work_orders"),
        sa.CheckConstraint("fp_qty >= 0 AND rw_qty >= 0", name="ck_wo_operations_waiting_not_negative"),
    )
    op.create_table(
        "wo_serials",
        sa.Column("serial", sa.String(CODE), nullable=False),
        sa.Column("work_order", sa.String(CODE), nullable=False),
        sa.PrimaryKeyConstraint("serial", name="pk_wo_serials"),
        sa.ForeignKeyConstraint(["work_order"], ["work_orders.id"], name="fk_wo_serials_work_order_work_orders"),
    )
    op.create_index("ix_wo_serials_work_order", "wo_serials", ["work_order"])
    op.create_table(
        "operation_events",
        sa.Column("event_id", sa.String(EVENT_ID), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("work_order", sa.String(CODE), nullable=False),
        sa.Column("operation", sa.Integer(), nullable=False),
        sa.Column("provenance", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("source_time", utc_datetime(), nullable=False),
        sa.Column("recorded_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_operation_events"),
    )
    op.create_index("ix_operation_events_work_order", "operation_events", ["work_order"])
    op.create_table(
        "event_problems",
        sa.Column("id", _line_id(), nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(EVENT_ID), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("recorded_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_problems"),
    )
    op.create_index("ix_event_problems_status", "event_problems", ["status"])
    op.create_index("ix_event_problems_event_id", "event_problems", ["event_id"])
    op.create_table(
        "journal_lines",
        sa.Column("id", _line_id(), nullable=False, autoincrement=True),
        sa.Column("entry", sa.String(EVENT_ID + 20), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(EVENT_ID), nullable=True),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("debit", money(), nullable=False),
        sa.Column("credit", money(), nullable=False),
        sa.Column("work_order", sa.String(CODE), nullable=False),
        sa.Column("operation", sa.Integer(), nullable=True),
        sa.Column("work_center", sa.String(CODE), nullable=True),
        sa.Column("element", sa.String(16), nullable=True),
        sa.Column("provenance", sa.String(16), nullable=True),
        sa.Column("item", sa.String(CODE), nullable=True),
        sa.Column("stock_move_id", _line_id(), nullable=True),
        sa.Column("effective_at", utc_datetime(), nullable=False),
        sa.Column("recorded_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journal_lines"),
        sa.CheckConstraint("debit >= 0 AND credit >= 0", name="ck_journal_lines_amounts_not_negative"),
    )
    op.create_index("ix_journal_lines_account_effective_at", "journal_lines", ["account", "effective_at"])
    op.create_index("ix_journal_lines_work_order", "journal_lines", ["work_order"])
    create_triggers("journal_lines", "post a correcting entry instead")


def downgrade() -> None:
    drop_triggers("journal_lines")
    for index, table in (
        ("ix_journal_lines_work_order", "journal_lines"),
        ("ix_journal_lines_account_effective_at", "journal_lines"),
        ("ix_event_problems_event_id", "event_problems"),
        ("ix_event_problems_status", "event_problems"),
        ("ix_operation_events_work_order", "operation_events"),
        ("ix_wo_serials_work_order", "wo_serials"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("journal_lines", "event_problems", "operation_events", "wo_serials", "wo_operations", "work_orders"):
        op.drop_table(table)
