"""alerts: alerts with their durable clocks, their history, the outbox, and what the rules count

Revision ID: alerts_0002
Revises: alerts_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.outbox import create_outbox

revision = "alerts_0002"
down_revision = "alerts_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", UUID(as_uuid=True), primary_key=True),
        # What it is about, unique: case:<id>, outbreak:<unit>:<event>, missing:<node>:<day>:<hhmm>
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("unit", sa.String(32)),
        sa.Column("unit_type", sa.String(40)),
        sa.Column("case_id", UUID(as_uuid=True)),
        sa.Column("case_kind", sa.String(10)),
        sa.Column("recipients", ARRAY(sa.String(40)), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("responsible", sa.String(12), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("deadline", TZ, nullable=False),
        # The durable clock: how far along its schedule the alert is, and when it next acts.
        sa.Column("stage", sa.SmallInteger, nullable=False),
        sa.Column("next_at", TZ),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("acknowledged_at", TZ),
        sa.Column("acknowledged_by", sa.String(100)),
        sa.Column("closed_at", TZ),
        sa.Column("closed_by", sa.String(100)),
        sa.Column("outcome", sa.String(20)),
        sa.Column("note", sa.Text),
        sa.Column("details", JSONB, nullable=False),
        sa.CheckConstraint("status IN ('open', 'acknowledged', 'closed')", name="status"),
        schema="alerts",
    )
    # The clock claims what is due; only open alerts have a running clock.
    op.execute("CREATE INDEX ix_alerts_due ON alerts.alerts (next_at) "
               "WHERE status = 'open' AND next_at IS NOT NULL")
    op.execute("CREATE INDEX ix_alerts_node ON alerts.alerts (node text_pattern_ops) "
               "WHERE status <> 'closed'")
    op.execute("CREATE INDEX ix_alerts_node_day ON alerts.alerts (day, node text_pattern_ops)")
    op.execute("CREATE INDEX ix_alerts_outbreak_unit ON alerts.alerts (unit, day) "
               "WHERE kind = 'outbreak'")
    op.create_table(
        "transitions",
        sa.Column("alert_id", UUID(as_uuid=True),
                  sa.ForeignKey("alerts.alerts.alert_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("change", sa.String(20), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", JSONB, nullable=False),
        schema="alerts",
    )
    create_outbox(op, "alerts")
    # Per unit and day: whether it reported (for missing reports) and its flu-like counts.
    op.create_table(
        "unit_days",
        sa.Column("unit", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("report_revision", sa.Integer),
        sa.Column("report_ili", sa.Float),
        sa.Column("case_ili", sa.Integer, nullable=False, server_default="0"),
        schema="alerts",
    )
    op.create_table(
        "missing_units",
        sa.Column("alert_id", UUID(as_uuid=True),
                  sa.ForeignKey("alerts.alerts.alert_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("unit", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("reported_at", TZ),
        schema="alerts",
    )
    op.execute("CREATE INDEX ix_missing_units_open ON alerts.missing_units (unit, day) "
               "WHERE reported_at IS NULL")
    op.create_table(
        "cutoff_runs",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("cutoff", sa.Time, primary_key=True),
        sa.Column("ran_at", TZ, nullable=False),
        sa.Column("alerts_opened", sa.Integer, nullable=False),
        schema="alerts",
    )


def downgrade() -> None:
    for table in ("cutoff_runs", "missing_units", "unit_days", "outbox", "transitions", "alerts"):
        op.drop_table(table, schema="alerts")
