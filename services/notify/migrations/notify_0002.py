"""notify: delivery receipts (delivered, not only sent) and the outbox of delivery outcomes

Revision ID: notify_0002
Revises: notify_0001

A delivery keeps the message id the SMS gateway answered with (`provider_id`) and when a
receipt said it reached the phone (`delivered_at`, status `delivered`). Every receipt the
gateway posts is kept in `receipts`, matched or not (an unknown id is kept with its refusal);
none holds a phone number. The outbox carries DeliveryOutcome events to the alerts service.
"""

import sqlalchemy as sa
from alembic import op

from shared.outbox import create_outbox

revision = "notify_0002"
down_revision = "notify_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("provider_id", sa.String(200)), schema="notify")
    op.add_column("deliveries", sa.Column("delivered_at", TZ), schema="notify")
    # Not unique: a gateway's ids are its own business, and a record must never fail on one.
    op.create_index("ix_deliveries_provider", "deliveries", ["channel", "provider_id"],
                    schema="notify",
                    postgresql_where=sa.text("provider_id IS NOT NULL"))
    op.create_table(
        "receipts",  # every delivery receipt a gateway posted, in the order received
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("provider_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),  # delivered | failed
        sa.Column("error", sa.String(200)),  # the gateway's code, never an address
        sa.Column("reported_at", TZ),  # when the gateway says it happened
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("delivery_id", sa.BigInteger),  # None: no delivery has that message id
        # applied, duplicate (said before), or a refusal code (unknown_message)
        sa.Column("result", sa.String(30), nullable=False),
        schema="notify",
    )
    create_outbox(op, "notify")  # DeliveryOutcome events, published after commit


def downgrade() -> None:
    op.drop_table("outbox", schema="notify")
    op.drop_table("receipts", schema="notify")
    op.drop_index("ix_deliveries_provider", "deliveries", schema="notify")
    op.drop_column("deliveries", "delivered_at", schema="notify")
    op.drop_column("deliveries", "provider_id", schema="notify")
