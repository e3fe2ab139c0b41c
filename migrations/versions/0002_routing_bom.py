"""work centers, routings, BOM versions

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import qty, rate, utc_datetime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_centers",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("labor_rate", rate(), nullable=False),
        sa.Column("machine_rate", rate(), nullable=False),
        sa.Column("energy_tariff", rate(), nullable=False),
        sa.Column("cost_center", sa.String(64), nullable=False),
        sa.Column("supply_location", sa.String(64), nullable=True),
        sa.Column("updated_at", utc_datetime(), nullable=False),
        sa.ForeignKeyConstraint(["supply_location"], ["locations.code"],
                                name="fk_work_centers_supply_location_locations"),
        sa.PrimaryKeyConstraint("code", name="pk_work_centers"),
    )
    for kind in ("machine", "terminal"):
        table = f"work_center_{kind}s"
        op.create_table(
            table,
            sa.Column(kind, sa.String(64), nullable=False),
            sa.Column("work_center", sa.String(64), nullable=False),
            sa.ForeignKeyConstraint(["work_center"], ["work_centers.code"],
                                    name=f"fk_{table}_work_center_work_centers"),
            sa.PrimaryKeyConstraint(kind, name=f"pk_{table}"),
        )
        op.create_index(f"ix_{table}_work_center", table, ["work_center"])
    for prefix in ("routing", "bom"):
        table = f"{prefix}_versions"
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("item", sa.String(64), nullable=False),
            sa.Column("revision", sa.String(32), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("valid_from", sa.Date(), nullable=False),
            sa.Column("valid_to", sa.Date(), nullable=True),
            sa.Column("created_at", utc_datetime(), nullable=False),
            sa.Column("released_at", utc_datetime(), nullable=True),
            sa.Column("obsoleted_at", utc_datetime(), nullable=True),
            sa.ForeignKeyConstraint(["item"], ["items.code"], name=f"fk_{table}_item_items"),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.UniqueConstraint("item", "revision", name=f"uq_{table}_item_revision"),
        )
    op.create_table(
        "routing_operations",
        sa.Column("routing_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("work_center", sa.String(64), nullable=False),
        sa.Column("setup_min", qty(), nullable=False),
        sa.Column("run_min_per_unit", qty(), nullable=False),
        sa.Column("std_kwh_per_unit", qty(), nullable=False),
        sa.Column("yield_pct", qty(), nullable=False),
        sa.Column("quality_standard", sa.Text(), nullable=False),
        sa.Column("rework_to", sa.Integer(), nullable=True),
        sa.Column("after", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["routing_id"], ["routing_versions.id"],
                                name="fk_routing_operations_routing_id_routing_versions"),
        sa.ForeignKeyConstraint(["work_center"], ["work_centers.code"],
                                name="fk_routing_operations_work_center_work_centers"),
        sa.PrimaryKeyConstraint("routing_id", "number", name="pk_routing_operations"),
    )
    op.create_table(
        "release_generations",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("changed_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_release_generations"),
    )
    op.create_table(
        "bom_lines",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("qty_per", qty(), nullable=False),
        sa.Column("uom", sa.String(16), nullable=False),
        sa.Column("scrap_pct", qty(), nullable=False),
        sa.Column("operation", sa.Integer(), nullable=True),
        sa.Column("phantom", sa.Boolean(), nullable=False),
        sa.Column("fixed_qty", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["bom_versions.id"], name="fk_bom_lines_version_id_bom_versions"),
        sa.ForeignKeyConstraint(["component"], ["items.code"], name="fk_bom_lines_component_items"),
        sa.PrimaryKeyConstraint("version_id", "line_no", name="pk_bom_lines"),
    )
    op.create_index("ix_bom_lines_component", "bom_lines", ["component"])


def downgrade() -> None:
    op.drop_index("ix_bom_lines_component", table_name="bom_lines")
    op.drop_table("bom_lines")
    op.drop_table("release_generations")
    op.drop_table("routing_operations")
    op.drop_table("bom_versions")
    op.drop_table("routing_versions")
    for table in ("work_center_terminals", "work_center_machines"):
        op.drop_index(f"ix_{table}_work_center", table_name=table)
        op.drop_table(table)
    op.drop_table("work_centers")
