"""ledger: the corrections of a registration, each kept with who, when, why and what changed

Revision ID: ledger_0002
Revises: ledger_0001

A correction (`PATCH /v1/control/people/{id}`) keeps every field it changed with its value
before and after. A name or contact corrected is kept here as it was, beside
`ledger.identities` in the same schema: only the village's and the town's operators read it
back; every other level reads that the field changed, never its values.
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("ledger.people.person_id"),
                  nullable=False, index=True),
        sa.Column("corrected_at", TZ, nullable=False),
        sa.Column("corrected_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),  # {field: [before, after]}
        schema="ledger",
    )


def downgrade() -> None:
    op.drop_table("corrections", schema="ledger")
