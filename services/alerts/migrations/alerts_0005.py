"""alerts: who was told of an alert, how, when and whether it arrived

Revision ID: alerts_0005
Revises: alerts_0004

One row per DeliveryOutcome event notify published (sent, delivered, failed), keyed by its
message id: a redelivered event adds nothing. A history of its own beside `transitions`: it
never changes an alert's state or clock, and like `transitions` it is append-only. The person
is the masked name the event carries (张某), never an address.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "alerts_0005"
down_revision = "alerts_0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("msg_id", sa.String(200), primary_key=True),
        sa.Column("alert_id", UUID(as_uuid=True),
                  sa.ForeignKey("alerts.alerts.alert_id"), nullable=False,
                  index=True),
        sa.Column("delivery_id", sa.BigInteger, nullable=False),
        sa.Column("step", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("person", sa.String(20), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("received_at", TZ, nullable=False),
        schema="alerts",
    )
    op.execute("CREATE TRIGGER deliveries_append_only BEFORE UPDATE OR DELETE ON "
               "alerts.deliveries FOR EACH ROW EXECUTE FUNCTION alerts.append_only()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS deliveries_append_only ON alerts.deliveries")
    op.drop_table("deliveries", schema="alerts")
