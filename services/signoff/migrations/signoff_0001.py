"""signoff: the reports as reviewed, send-backs, confirmations with their snapshots, the changes
after a confirmation, the audit trail and the outbox

Revision ID: signoff_0001
Revises: registry_0001

Nothing here is ever deleted: a send-back keeps who cleared it with which revision, a
confirmation keeps its snapshot after it was reopened, and every action is an audit entry.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.outbox import create_outbox

revision = "signoff_0001"
down_revision = "registry_0001"
branch_labels = ("signoff",)
depends_on = None

TZ = sa.DateTime(timezone=True)
JSONB = postgresql.JSONB


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS signoff")
    op.create_table(
        "unit_days",  # each unit-day's latest revision, from report.accepted
        sa.Column("unit", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("values", JSONB, nullable=False),
        sa.Column("zero", sa.Boolean, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("reporter", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("actor", sa.String(100)),
        schema="signoff",
    )
    op.create_index("ix_unit_days_day_node", "unit_days", ["day", "node"], schema="signoff")
    op.create_table(
        "sendbacks",  # 退回: a unit's report sent back with a reason, until a correction clears it
        sa.Column("sendback_id", sa.Uuid, primary_key=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("sent_by", sa.String(100), nullable=False),
        sa.Column("credential", sa.Uuid, nullable=False),
        sa.Column("sent_at", TZ, nullable=False),
        sa.Column("cleared_at", TZ),
        sa.Column("cleared_revision", sa.Integer),
        sa.Column("cleared_by", sa.String(100)),
        sa.Column("cleared_reason", sa.Text),
        schema="signoff",
    )
    op.create_index("ix_sendbacks_day_node", "sendbacks", ["day", "node"], schema="signoff")
    op.create_index("uq_sendbacks_open", "sendbacks", ["unit", "day"], unique=True,
                    schema="signoff", postgresql_where=sa.text("cleared_at IS NULL"))
    op.create_table(
        "confirmations",  # 确认上报: a node's day frozen, version 1, 2… after each reopening
        sa.Column("confirmation_id", sa.Uuid, primary_key=True),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("figures", JSONB, nullable=False),
        sa.Column("units", JSONB, nullable=False),  # unit → the revision the snapshot holds
        sa.Column("reported", sa.Integer, nullable=False),
        sa.Column("confirmed_at", TZ, nullable=False),
        sa.Column("confirmed_by", sa.String(100), nullable=False),
        sa.Column("credential", sa.Uuid, nullable=False),
        sa.Column("reopened_at", TZ),
        sa.UniqueConstraint("node", "day", "version", name="uq_confirmations_version"),
        schema="signoff",
    )
    op.create_table(
        "changes",  # a report that changed a node's figures after its confirmation
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("confirmation_id", sa.Uuid,
                  sa.ForeignKey("signoff.confirmations.confirmation_id"), nullable=False,
                  index=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("confirmed_revision", sa.Integer),  # None: the unit was not in the snapshot
        sa.Column("kind", sa.String(12), nullable=False),  # correction | late_report
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.String(100)),
        sa.Column("at", TZ, nullable=False),
        schema="signoff",
    )
    op.create_table(
        "audit",  # every action with who, when and why; its entry is the event's message id
        sa.Column("entry", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("action", sa.String(12), nullable=False),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("unit", sa.String(32)),
        sa.Column("revision", sa.Integer),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", JSONB, nullable=False),
        schema="signoff",
    )
    op.create_index("ix_audit_day_node", "audit", ["day", "node"], schema="signoff")
    create_outbox(op, "signoff")


def downgrade() -> None:
    op.execute("DROP SCHEMA signoff CASCADE")
