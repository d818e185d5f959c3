"""alerts: the confirmations of node-days (确认上报), and the confirmation times checked

Revision ID: alerts_0006
Revises: alerts_0005

A node of a level that confirms (shared/data/signoff.toml) and has not confirmed its day by
its time raises a `missing_confirmation` alert, like units missing at a cutoff: alerts keeps
what the signoff service published (`signoff.confirmed.…`, `signoff.reopened.…`), the latest
entry of each node-day winning, and checks each day's time once.
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0006"
down_revision = "alerts_0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "confirmations",
        sa.Column("node", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("entry", sa.BigInteger, nullable=False),  # signoff's audit entry: newest wins
        schema="alerts",
    )
    op.create_table(
        "confirmation_runs",  # a level's confirmation time on a day was checked, once
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("level", sa.SmallInteger, primary_key=True),
        sa.Column("ran_at", TZ, nullable=False),
        sa.Column("alerts_opened", sa.Integer, nullable=False),
        schema="alerts",
    )


def downgrade() -> None:
    op.drop_table("confirmation_runs", schema="alerts")
    op.drop_table("confirmations", schema="alerts")
