"""notify: staff contacts, duty rosters, the events taken in and the deliveries they made

Revision ID: notify_0001
Revises: registry_0001

Staff records (people, their roles at a unit or node, the duty roster of a node's days) are
notify's own: they reach the bus never, and a delivery row names the person, not the address.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "notify_0001"
down_revision = "registry_0001"
branch_labels = ("notify",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS notify")
    op.create_table(
        "people",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("node", sa.String(12), nullable=False, index=True),  # whose staff: access
        sa.Column("phone", sa.String(32)),
        sa.Column("email", sa.String(254)),
        sa.Column("chat_kind", sa.String(10)),  # wecom | dingtalk
        sa.Column("chat_webhook", sa.Text),
        sa.Column("chat_secret", sa.Text),  # DingTalk's signing secret
        sa.Column("updated_at", TZ, nullable=False),
        schema="notify",
    )
    op.create_table(
        "contacts",  # the person in charge and the reporting officer of a unit or a node
        sa.Column("scope", sa.String(32), primary_key=True),  # a unit code or a node code
        sa.Column("role", sa.String(20), primary_key=True),  # in_charge | reporter
        sa.Column("node", sa.String(12), nullable=False, index=True),  # the scope's node
        sa.Column("person", sa.String(64), sa.ForeignKey("notify.people.code"), nullable=False),
        schema="notify",
    )
    op.create_table(
        "duty",  # a node's roster: who is on duty, who leads, on a day from `starts` to `ends`
        sa.Column("node", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("person", sa.String(64), sa.ForeignKey("notify.people.code"),
                  primary_key=True),
        sa.Column("role", sa.String(10), primary_key=True),  # on_duty | leader
        sa.Column("starts", sa.Time, primary_key=True),
        sa.Column("ends", sa.Time),  # NULL: to the end of the day
        schema="notify",
    )
    op.create_table(
        "applied_events",  # alert events taken in: a redelivery changes nothing
        sa.Column("msg_id", sa.String(200), primary_key=True),
        sa.Column("alert_id", sa.Uuid, nullable=False, index=True),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("applied_at", TZ, nullable=False),
        schema="notify",
    )
    op.create_table(
        "deliveries",  # one message to one person by one channel
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        # What it tells of: an alert event's message id, a digest's or a reminder's key.
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(20), nullable=False),  # opened, escalated, digest...
        sa.Column("alert_ids", postgresql.ARRAY(sa.Uuid), nullable=False),
        sa.Column("items", postgresql.JSONB),  # a digest's entries, one per alert
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("person_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),  # several: nobody found
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),  # pending, sent, failed, cancelled
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("key", "person", "channel", name="uq_deliveries_once"),
        schema="notify",
    )
    op.create_index("ix_deliveries_alerts", "deliveries", ["alert_ids"], schema="notify",
                    postgresql_using="gin")
    op.create_table(
        "reported",  # unit-days holding a report (from report.accepted): not to be reminded
        sa.Column("unit", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        schema="notify",
    )
    op.create_table(
        "reminder_runs",  # the reminders of a day's cutoff were made: by one replica, once
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("cutoff", sa.Time, primary_key=True),
        sa.Column("ran_at", TZ, nullable=False),
        sa.Column("reminded", sa.Integer, nullable=False),
        schema="notify",
    )
    op.create_index("ix_deliveries_due", "deliveries", ["next_attempt_at"], schema="notify",
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.execute("DROP SCHEMA notify CASCADE")
