"""first-pass units completed per work-order operation (cumulative rounding of backflushed components)

Revision ID: 0011_first_pass_done
Revises: 0010_balance_checkpoints

``wo_operations.fp_done``: the first-pass units completed at the operation so far, the base on which a
component counted in whole units (pcs) is issued by cumulative rounding up (``wip_costing.costing.backflush_qty``).
Existing rows start at 0: an order already in progress rounds from the upgrade on (its issues so far stay).
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import qty

revision = "0011_first_pass_done"
down_revision = "0010_balance_checkpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wo_operations") as batch:
        batch.add_column(sa.Column("fp_done", qty(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("wo_operations") as batch:
        batch.drop_column("fp_done")
