"""alerts: the events this service has applied

Revision ID: alerts_0001
Revises: registry_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0001"
down_revision = "registry_0001"
branch_labels = ("alerts",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS alerts")
    op.create_table(
        "applied_events",
        sa.Column("msg_id", sa.String(200), primary_key=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        schema="alerts",
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA alerts CASCADE")
