"""ledger: people under control (一人一案), their phases, tests, 包保 teams and sign-offs, the
countdowns announced to the alerts service, and the outbox

Revision ID: ledger_0001
Revises: registry_0001

A person's name and contact are in `identities`, apart from everything else: only the village's
and the town's operators read them; every other table, event and level carries the pseudonym.
"""

import sqlalchemy as sa
from alembic import op

from shared.outbox import create_outbox

revision = "ledger_0001"
down_revision = "registry_0001"
branch_labels = ("ledger",)
depends_on = None

TZ = sa.DateTime(timezone=True)
S = "ledger"


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ledger")
    op.create_table(
        "people",
        sa.Column("person_id", sa.Uuid, primary_key=True),
        sa.Column("pseudonym", sa.String(20), nullable=False, unique=True),
        sa.Column("village", sa.String(12), nullable=False, index=True),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("regime", sa.String(40), nullable=False),
        sa.Column("site", sa.String(100)),  # the named isolation site of its site phases
        sa.Column("start_day", sa.Date, nullable=False),
        sa.Column("outcome", sa.String(20)),  # set once the file is closed (销账)
        sa.Column("registered_at", TZ, nullable=False),
        sa.Column("registered_by", sa.String(100), nullable=False),
        schema=S,
    )
    op.create_table(
        "identities",  # who the person is: village and town operators only
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("ledger.people.person_id"),
                  primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("contact", sa.String(100)),
        schema=S,
    )
    op.create_table(
        "phase_ends",  # the day each phase was released; the last with the file's outcome
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("ledger.people.person_id"),
                  primary_key=True),
        sa.Column("phase", sa.SmallInteger, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        schema=S,
    )
    op.create_table(
        "tests",
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("ledger.people.person_id"),
                  primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("result", sa.String(10), nullable=False),  # negative | positive | pending
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        schema=S,
    )
    op.create_table(
        "team",  # the 五包一 team: up to five named staff
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("ledger.people.person_id"),
                  primary_key=True),
        sa.Column("seat", sa.SmallInteger, primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("staff", sa.String(100), nullable=False),
        schema=S,
    )
    op.create_table(
        "signoffs",
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("ledger.people.person_id"),
                  primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("seat", sa.SmallInteger, primary_key=True),
        sa.Column("signed_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        schema=S,
    )
    op.create_table(
        "countdowns",  # what was announced to the alerts service, and its state
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("person_id", sa.Uuid, nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),  # due | met | withdrawn
        sa.Column("seq", sa.Integer, nullable=False),
        schema=S,
    )
    op.create_table(
        "stock_sent",  # the headcounts last submitted for each village and day
        sa.Column("village", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),  # how many times sent
        sa.Column("sent_at", TZ, nullable=False),
        schema=S,
    )
    op.create_table(
        "stock_dirty",  # villages whose headcounts changed from `since` on: to submit again
        sa.Column("village", sa.String(12), primary_key=True),
        sa.Column("since", sa.Date, nullable=False),
        schema=S,
    )
    create_outbox(op, S)


def downgrade() -> None:
    op.execute("DROP SCHEMA ledger CASCADE")
