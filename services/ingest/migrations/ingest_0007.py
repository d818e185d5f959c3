"""ingest: one index for the ledger's reads by day and area instead of two

Revision ID: ingest_0007
Revises: ingest_0006

Every read of `ingest.reports` by area names a day (or a range of days) and a node's prefix
(`node_code ~>=~ :node AND node_code ~<~ :node || '~'`): the notes of a day, a DHIS2 export,
reconcile and the batch recompute. `(day, node_code text_pattern_ops)` serves them all; of the
two indexes it replaces, `(node_code, day)` could not serve a prefix range at all (its default
operator class has no `~>=~`) and `(day)` served only the day. Each report written maintains
one index fewer: three with the primary key and the unique revision key.
"""

from alembic import op

revision = "ingest_0007"
down_revision = "ingest_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_reports_day_node ON ingest.reports "
               "(day, node_code text_pattern_ops)")
    op.drop_index("ix_reports_node_day", table_name="reports", schema="ingest")
    op.drop_index("ix_reports_day", table_name="reports", schema="ingest")


def downgrade() -> None:
    op.create_index("ix_reports_day", "reports", ["day"], schema="ingest")
    op.create_index("ix_reports_node_day", "reports", ["node_code", "day"], schema="ingest")
    op.drop_index("ix_reports_day_node", table_name="reports", schema="ingest")
