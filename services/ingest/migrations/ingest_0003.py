"""ingest: the audit trail is append-only (revisions, cases, rejections refuse UPDATE and DELETE)

Revision ID: ingest_0003
Revises: ingest_0002

A correction is a new revision, never an edit; a refusal is kept as it was. The database itself
refuses to change them, whatever connects to it (the outbox beside them is not touched: the relay
deletes what it has published). A real need to erase (a court order) is an explicit
`ALTER TABLE … DISABLE TRIGGER` by the database owner, which leaves its own trace.
"""

from alembic import op

revision = "ingest_0003"
down_revision = "ingest_0002"
branch_labels = None
depends_on = None

TABLES = ("reports", "cases", "rejections")

REFUSE = """
CREATE OR REPLACE FUNCTION ingest.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ingest.% is append-only: % refused (a correction is a new revision)',
        TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.execute(REFUSE)
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON ingest.{table}"
                   f" FOR EACH ROW EXECUTE FUNCTION ingest.append_only()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON ingest.{table}"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION ingest.append_only()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON ingest.{table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON ingest.{table}")
    op.execute("DROP FUNCTION IF EXISTS ingest.append_only()")
