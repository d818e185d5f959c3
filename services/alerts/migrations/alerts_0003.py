"""alerts: an alert's history (transitions) is append-only

Revision ID: alerts_0003
Revises: alerts_0002

Every step of an alert (opened, warned, escalated, acknowledged, closed) is a new row; the
database refuses to change or remove one, whatever connects to it.
"""

from alembic import op

revision = "alerts_0003"
down_revision = "alerts_0002"
branch_labels = None
depends_on = None

REFUSE = """
CREATE OR REPLACE FUNCTION alerts.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alerts.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.execute(REFUSE)
    op.execute("CREATE TRIGGER transitions_append_only BEFORE UPDATE OR DELETE ON "
               "alerts.transitions FOR EACH ROW EXECUTE FUNCTION alerts.append_only()")
    op.execute("CREATE TRIGGER transitions_no_truncate BEFORE TRUNCATE ON alerts.transitions "
               "FOR EACH STATEMENT EXECUTE FUNCTION alerts.append_only()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS transitions_no_truncate ON alerts.transitions")
    op.execute("DROP TRIGGER IF EXISTS transitions_append_only ON alerts.transitions")
    op.execute("DROP FUNCTION IF EXISTS alerts.append_only()")
