"""ingest: the ledger of report revisions, the outbox and kept rejections

Revision ID: ingest_0001
Revises: registry_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "ingest_0001"
down_revision = "registry_0001"
branch_labels = ("ingest",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ingest")
    op.create_table(
        "reports",
        sa.Column("report_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("unit_code", sa.String(32), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("node_code", sa.String(12), nullable=False),
        sa.Column("values", JSONB, nullable=False),
        sa.Column("zero", sa.Boolean, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reporter", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text),
        sa.UniqueConstraint("unit_code", "day", "revision", name="uq_reports_unit_day_revision"),
        schema="ingest",
    )
    op.create_index("ix_reports_node_day", "reports", ["node_code", "day"], schema="ingest")
    op.create_index("ix_reports_day", "reports", ["day"], schema="ingest")
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("msg_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        schema="ingest",
    )
    op.create_table(
        "rejections",
        sa.Column("rejection_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("unit_code", sa.String(32)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("errors", JSONB, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        schema="ingest",
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA ingest CASCADE")
