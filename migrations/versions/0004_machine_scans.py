"""work orders scanned at machines

Revision ID: 0004
Revises: 0003

Written by hand to match ``machine_scans`` in ``wip_costing/tables.py`` exactly (``tests/integration/test_schema.py``
checks it), plus triggers that make it append-only (UPDATE and DELETE refused).
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import utc_datetime
from migrations.append_only import create_triggers, drop_triggers

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CODE = 64


def upgrade() -> None:
    op.create_table(
        "machine_scans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("machine", sa.String(CODE), nullable=False),
        sa.Column("work_order", sa.String(CODE), nullable=False),
        sa.Column("operator", sa.String(CODE), nullable=True),
        sa.Column("terminal", sa.String(CODE), nullable=True),
        sa.Column("scanned_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_machine_scans"),
        sa.ForeignKeyConstraint(["work_order"], ["work_orders.id"], name="fk_machine_scans_work_order_work_orders"),
    )
    op.create_index("ix_machine_scans_machine_id", "machine_scans", ["machine", "id"])
    create_triggers("machine_scans", "scan again instead")


def downgrade() -> None:
    drop_triggers("machine_scans")
    op.drop_index("ix_machine_scans_machine_id", table_name="machine_scans")
    op.drop_table("machine_scans")
