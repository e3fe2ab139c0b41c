"""work-center rates versioned by effective date

Revision ID: 0008_work_center_rates
Revises: 0007_events_order_fk

Written by hand to match ``work_center_rates`` in ``routing/tables.py`` (``tests/integration/test_schema.py``
checks it). A work center's labor rate, machine rate and energy tariff become versions, each effective from a
date: a rate change starts a new version and a work order takes the rates effective on its release date (the
rates it froze at release never change). Upgrade: each work center's current rates become its first version,
effective from 1970-01-01 (always). ``work_centers`` keeps the latest rates as a convenience for listings.
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import rate, utc_datetime

revision = "0008_work_center_rates"
down_revision = "0007_events_order_fk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_center_rates",
        sa.Column("work_center", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("labor_rate", rate(), nullable=False),
        sa.Column("machine_rate", rate(), nullable=False),
        sa.Column("energy_tariff", rate(), nullable=False),
        sa.Column("recorded_at", utc_datetime(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["work_center"], ["work_centers.code"],
                                name="fk_work_center_rates_work_center_work_centers"),
        sa.PrimaryKeyConstraint("work_center", "valid_from", name="pk_work_center_rates"),
    )
    op.execute(
        "INSERT INTO work_center_rates (work_center, valid_from, labor_rate, machine_rate, energy_tariff, "
        "recorded_at, source) SELECT code, '1970-01-01', labor_rate, machine_rate, energy_tariff, updated_at, "
        "'migration 0008' FROM work_centers"
    )


def downgrade() -> None:
    op.drop_table("work_center_rates")
