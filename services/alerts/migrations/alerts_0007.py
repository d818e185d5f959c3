"""alerts: 疑似瞒报 flags, and what a unit-day needs to raise them

Revision ID: alerts_0007
Revises: alerts_0006

A unit-day now keeps whether its latest report is a zero report and its values, and how many
fever and flu-like cases the unit sent that day; `flags` keeps each suspicion raised (a zero
report on a day with a case; non-zero values identical for N days) with its dismissal: who,
when and why. Unit-days stored before keep NULL there and raise nothing retroactively.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "alerts_0007"
down_revision = "alerts_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unit_days", sa.Column("report_zero", sa.Boolean), schema="alerts")
    op.add_column("unit_days", sa.Column("report_values", JSONB), schema="alerts")
    op.add_column("unit_days", sa.Column("cases", sa.Integer, nullable=False,
                                         server_default="0"), schema="alerts")
    op.create_table(
        "flags",
        sa.Column("flag_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("sector", sa.String(40), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("details", JSONB, nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False, server_default="open"),
        sa.Column("dismissed_at", sa.DateTime(timezone=True)),
        sa.Column("dismissed_by", sa.String(100)),
        sa.Column("dismissal_reason", sa.Text),
        sa.CheckConstraint("status IN ('open', 'dismissed')", name="flag_status"),
        sa.CheckConstraint("status = 'open' OR (dismissed_at IS NOT NULL AND "
                           "dismissal_reason IS NOT NULL)", name="flag_dismissal_said"),
        schema="alerts",
    )
    op.create_index("flags_by_node_day", "flags", ["node", "day"], schema="alerts")


def downgrade() -> None:
    op.drop_index("flags_by_node_day", table_name="flags", schema="alerts")
    op.drop_table("flags", schema="alerts")
    for column in ("cases", "report_values", "report_zero"):
        op.drop_column("unit_days", column, schema="alerts")
