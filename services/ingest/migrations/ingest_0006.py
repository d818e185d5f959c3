"""ingest: each DHIS2 data value set import, with who sent it and DHIS2's summary of it

Revision ID: ingest_0006
Revises: ingest_0005

The reports an import makes are in the ledger like any (with the operator as actor, a
correction's reason); this keeps the import itself: when, by whom, how many values and what
became of them, so that one that changed nothing (a repeat) leaves its trace too. Append-only,
like the rest of the trail.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "ingest_0006"
down_revision = "ingest_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dhis2_imports",
        sa.Column("import_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credential_id", UUID(as_uuid=True)),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),  # the importer's node
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("data_values", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("summary", JSONB, nullable=False),  # DHIS2's ImportSummary, as answered
        schema="ingest",
    )
    op.create_index("ix_dhis2_imports_scope", "dhis2_imports", ["scope", "received_at"],
                    schema="ingest")
    op.execute("CREATE TRIGGER dhis2_imports_append_only BEFORE UPDATE OR DELETE ON "
               "ingest.dhis2_imports FOR EACH ROW EXECUTE FUNCTION ingest.append_only()")
    op.execute("CREATE TRIGGER dhis2_imports_no_truncate BEFORE TRUNCATE ON "
               "ingest.dhis2_imports FOR EACH STATEMENT EXECUTE FUNCTION ingest.append_only()")


def downgrade() -> None:
    op.drop_table("dhis2_imports", schema="ingest")
