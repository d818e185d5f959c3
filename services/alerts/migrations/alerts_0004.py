"""alerts: the units a supply alert holds below its stock level

Revision ID: alerts_0004
Revises: alerts_0003

One row per supply alert and unit, with the unit's latest revision and figure: the alert closes
by itself once no row is below. Nothing stored before changes.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "alerts_0004"
down_revision = "alerts_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_units",
        sa.Column("alert_id", UUID(as_uuid=True),
                  sa.ForeignKey("alerts.alerts.alert_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("unit", sa.String(32), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("below", sa.Boolean, nullable=False),
        schema="alerts",
    )


def downgrade() -> None:
    op.drop_table("stock_units", schema="alerts")
