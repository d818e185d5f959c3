"""ingest: a report revision may carry a note (and a fever case the seeds' extra fields)

Revision ID: ingest_0004
Revises: ingest_0003

Columns added, nullable: every revision and case already stored keeps its values and reads
with no note (and no extra case fields). The append-only triggers stay: adding a column is no
update of the rows. Stored values keep their metric codes, so what they meant they still mean;
only how a range of days folds them changed (people under observation read as the last day's
headcount, no longer as a sum of days), which needs nothing rewritten.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "ingest_0004"
down_revision = "ingest_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("note", sa.Text(), nullable=True), schema="ingest")
    op.add_column("cases", sa.Column("details", postgresql.JSONB(), nullable=True),
                  schema="ingest")


def downgrade() -> None:
    op.drop_column("cases", "details", schema="ingest")
    op.drop_column("reports", "note", schema="ingest")
