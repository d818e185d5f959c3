"""aggregate: each unit's applied report per day, and the rollups of every node and day

Revision ID: aggregate_0001
Revises: registry_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "aggregate_0001"
down_revision = "registry_0001"
branch_labels = ("aggregate",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS aggregate")
    op.create_table(
        "unit_days",
        sa.Column("unit_code", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("report_id", UUID(as_uuid=True), nullable=False),
        sa.Column("node_code", sa.String(12), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("sector", sa.String(40), nullable=False),
        sa.Column("values", JSONB, nullable=False),
        sa.Column("zero", sa.Boolean, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        schema="aggregate",
    )
    op.execute("CREATE INDEX ix_unit_days_day_node ON aggregate.unit_days "
               "(day, node_code text_pattern_ops)")
    op.create_table(
        "rollups",
        sa.Column("node_code", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("metric", sa.String(40), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        schema="aggregate",
    )
    op.create_table(
        "completeness",
        sa.Column("node_code", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("reported", sa.Integer, nullable=False),
        sa.Column("zero", sa.Integer, nullable=False),
        sa.Column("late", sa.Integer, nullable=False),
        schema="aggregate",
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA aggregate CASCADE")
