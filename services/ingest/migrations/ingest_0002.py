"""ingest: fever and flu-like cases; who sent each report and rejection

Revision ID: ingest_0002
Revises: ingest_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "ingest_0002"
down_revision = "ingest_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("reports", "rejections"):
        op.add_column(table, sa.Column("credential_id", UUID(as_uuid=True)), schema="ingest")
        op.add_column(table, sa.Column("actor", sa.String(120)), schema="ingest")
    op.add_column("rejections", sa.Column("source", sa.String(10)), schema="ingest")
    op.create_index("ix_rejections_unit_received", "rejections", ["unit_code", "received_at"],
                    schema="ingest")
    op.create_table(
        "cases",
        sa.Column("case_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("unit_code", sa.String(32), nullable=False),
        sa.Column("node_code", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("temperature", sa.Float),
        sa.Column("symptoms", JSONB, nullable=False),
        sa.Column("person_ref", sa.String(64), nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("credential_id", UUID(as_uuid=True)),
        sa.Column("actor", sa.String(120)),
        sa.CheckConstraint("kind IN ('fever', 'ili')", name="case_kind"),
        # The same person found at the same unit at the same moment is the same case: a retry.
        sa.UniqueConstraint("unit_code", "person_ref", "found_at", name="uq_cases_natural"),
        schema="ingest",
    )
    op.create_index("ix_cases_node_found", "cases", ["node_code", "found_at"], schema="ingest")


def downgrade() -> None:
    op.drop_table("cases", schema="ingest")
    op.drop_index("ix_rejections_unit_received", "rejections", schema="ingest")
    op.drop_column("rejections", "source", schema="ingest")
    for table in ("reports", "rejections"):
        op.drop_column(table, "actor", schema="ingest")
        op.drop_column(table, "credential_id", schema="ingest")
