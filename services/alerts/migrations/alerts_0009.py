"""alerts: units of a missing-report alert taken off it by a calendar (免报)

Revision ID: alerts_0009
Revises: alerts_0008

A calendar declared after a cutoff exempts units that the cutoff's alert lists as missing: the
unit is taken off the alert with the calendar that exempts it (`exempted_by`, a
`registry.exemptions` id) and when. Rows stored before keep both NULL.
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0009"
down_revision = "alerts_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("missing_units", sa.Column("exempted_by", sa.BigInteger), schema="alerts")
    op.add_column("missing_units", sa.Column("exempted_at", sa.DateTime(timezone=True)),
                  schema="alerts")


def downgrade() -> None:
    op.drop_column("missing_units", "exempted_at", schema="alerts")
    op.drop_column("missing_units", "exempted_by", schema="alerts")
