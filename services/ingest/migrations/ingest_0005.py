"""ingest: the send-backs (退回) of a unit's reports, as the signoff service published them

Revision ID: ingest_0005
Revises: ingest_0004

Ingest shows a unit why its report was sent back (on the unit's own token) and that its
correction cleared it; the send-backs themselves are signoff's, copied here from its events
(`signoff.sent_back.…`, `signoff.cleared.…`), keyed by the send-back's id so a redelivery
changes nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0005"
down_revision = "ingest_0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sendbacks",
        sa.Column("sendback_id", sa.Uuid, primary_key=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("revision", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("sent_by", sa.String(100)),
        sa.Column("sent_at", TZ),
        sa.Column("cleared_at", TZ),
        sa.Column("cleared_revision", sa.Integer),
        sa.Column("cleared_by", sa.String(100)),
        sa.Column("cleared_reason", sa.Text),
        schema="ingest",
    )
    op.create_index("ix_sendbacks_unit_day", "sendbacks", ["unit", "day"], schema="ingest")


def downgrade() -> None:
    op.drop_table("sendbacks", schema="ingest")
