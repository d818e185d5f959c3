"""console: the scheduled editions of the summaries, kept as they were made, and their outbox

Revision ID: console_0001
Revises: registry_0001

An edition is one node's summary at a scheduled time of one day: its workbook, CSV and document
are stored as produced (downloaded later byte for byte), and its EditionPublished event is
written to the outbox in the same transaction.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.outbox import create_outbox

revision = "console_0001"
down_revision = "registry_0001"
branch_labels = ("console",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS console")
    op.create_table(
        "editions",
        sa.Column("edition_id", sa.Uuid, primary_key=True),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("scheduled", sa.Time, nullable=False),  # the schedule's time of day
        sa.Column("produced_at", TZ, nullable=False),
        sa.Column("produced_by", sa.String(100), nullable=False),  # the credential's holder
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),  # of the workbook
        sa.Column("xlsx", sa.LargeBinary, nullable=False),
        sa.Column("csv", sa.LargeBinary, nullable=False),
        sa.Column("document", postgresql.JSONB, nullable=False),
        # Once per node, day and scheduled time, whatever the replicas.
        sa.UniqueConstraint("node", "day", "scheduled", name="uq_editions_schedule"),
        schema="console",
    )
    op.create_index("ix_editions_node_day", "editions", ["node", "day"], schema="console")
    create_outbox(op, "console")


def downgrade() -> None:
    op.execute("DROP SCHEMA console CASCADE")
