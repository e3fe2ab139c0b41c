"""API tokens (stored hashed) and the collectors' reported health

Revision ID: 0008_api_tokens
Revises: 0007_events_order_fk

Written by hand to match ``api_tokens`` (``mes_bridge/tokens.py``) and ``collector_health``
(``mes_bridge/health_reports.py``) exactly (``tests/integration/test_schema.py`` checks it). Column types are
frozen (``migrations.column_types``), never imported from the application.
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import utc_datetime

revision = "0008_api_tokens"
down_revision = "0007_events_order_fk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("work_centers", sa.Text(), nullable=False),
        sa.Column("machines", sa.Text(), nullable=False),
        sa.Column("created_at", utc_datetime(), nullable=False),
        sa.Column("revoked_at", utc_datetime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "collector_health",
        sa.Column("machine", sa.String(64), nullable=False),
        sa.Column("reported_by", sa.String(128), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("last_value_age_s", sa.Float(), nullable=True),
        sa.Column("spool_depth", sa.Integer(), nullable=False),
        sa.Column("events_per_s", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reported_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("machine", name="pk_collector_health"),
    )


def downgrade() -> None:
    op.drop_table("collector_health")
    op.drop_table("api_tokens")
