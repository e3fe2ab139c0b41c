"""operation_events.work_order refers to work_orders

Revision ID: 0007_events_order_fk
Revises: 0006_append_only_truncate

One foreign-key check per applied event (measured at about 2 % of the event path, ``benchmarks/foreign_keys.py``;
see ``wip_costing/tables.py`` for the keys left out and why). Existing rows already name existing orders (an event
is only recorded for an order its batch has locked).
"""

from alembic import op

revision = "0007_events_order_fk"
down_revision = "0006_append_only_truncate"
branch_labels = None
depends_on = None

NAME = "fk_operation_events_work_order_work_orders"


def upgrade() -> None:
    with op.batch_alter_table("operation_events") as batch:
        batch.create_foreign_key(NAME, "work_orders", ["work_order"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("operation_events") as batch:
        batch.drop_constraint(NAME, type_="foreignkey")
