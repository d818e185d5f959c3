"""aggregate: the states of a unit's day (pending, missing, exempt) and the cutoffs passed

A node-day keeps, instead of one count of units not yet reported, that count by cutoff
(`unreported`, {"10:00:00": 12, "14:00:00": 3}) and the units exempt that day (免报). Which of
the unreported units are pending (待报) and which missing (漏报) depends only on the clock, so the
passing of a cutoff writes nothing to the rollups: reads split the count at the instant they are
made. `aggregate.cutoffs` records each day's cutoffs whose passing was announced (once, whatever
the replicas and restarts).

Revision ID: aggregate_0004
Revises: aggregate_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "aggregate_0004"
down_revision = "aggregate_0003"
branch_labels = None
depends_on = "registry_0004"


def upgrade() -> None:
    op.execute("DROP VIEW aggregate.completeness")
    op.add_column("node_days", sa.Column("exempt", sa.Integer, nullable=False,
                                         server_default="0"), schema="aggregate")
    op.add_column("node_days", sa.Column("unreported", JSONB, nullable=False,
                                         server_default="{}"), schema="aggregate")
    # Days built before: their units not reported were counted under no cutoff. Forgotten as
    # built, a day is read from the unit records and the registry until it is built again (by
    # its next report or `rollcall reconcile --repair`; today within a minute of the start).
    op.execute("DELETE FROM aggregate.days")
    op.drop_column("node_days", "missing", schema="aggregate")
    op.create_table(
        "cutoffs",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("cutoff", sa.Time, primary_key=True),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nodes", sa.Integer, nullable=False),
        schema="aggregate",
    )
    op.execute("""
        CREATE VIEW aggregate.completeness AS
        SELECT node_code, day, expected, reported, zero, late, exempt, unreported
        FROM aggregate.node_days
    """)


def downgrade() -> None:
    op.execute("DROP VIEW aggregate.completeness")
    op.drop_table("cutoffs", schema="aggregate")
    op.add_column("node_days", sa.Column("missing", sa.Integer, nullable=False,
                                         server_default="0"), schema="aggregate")
    op.execute("""
        UPDATE aggregate.node_days SET missing = coalesce(
            (SELECT sum(CAST(v AS int)) FROM jsonb_each_text(unreported) AS kv(k, v)), 0)
    """)
    op.drop_column("node_days", "unreported", schema="aggregate")
    op.drop_column("node_days", "exempt", schema="aggregate")
    op.execute("""
        CREATE VIEW aggregate.completeness AS
        SELECT node_code, day, expected, reported, zero, late, missing FROM aggregate.node_days
    """)
