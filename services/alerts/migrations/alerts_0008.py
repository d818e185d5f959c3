"""alerts: the countdowns of people under control, waiting for their deadline

Revision ID: alerts_0008
Revises: alerts_0006

One row per countdown the ledger announced (a test due on a day, a phase's planned release, a
team's sign-off of a day), with the newest announcement's `seq`: the clock opens an alert of its
kind once `due_at` has passed unsettled, and a settlement closes it. Nothing stored before
changes.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "alerts_0008"
down_revision = "alerts_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "countdowns",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("grp", sa.String(120), nullable=False, index=True),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("pseudonym", sa.String(20), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True)),  # NULL: settled before announced
        sa.Column("seq", sa.Integer, nullable=False),
        # pending (waiting for due_at), alerted (its alert is open), done, withdrawn
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("details", JSONB, nullable=False),
        schema="alerts",
    )
    op.create_index("ix_countdowns_pending", "countdowns", ["due_at"], schema="alerts",
                    postgresql_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    op.drop_table("countdowns", schema="alerts")
