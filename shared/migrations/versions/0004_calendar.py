"""registry: calendars (免报), the declared exemptions from reporting

An exemption says that some units are not expected to report on some days, with a reason: one
unit, or every unit (of one type) at or below a node, for a period; a weekday makes it a weekly
rest day. Who declared it, when and why are kept; ending one keeps the days it already covered
(see shared/registry/calendar.py).

Revision ID: registry_0004
Revises: registry_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0004"
down_revision = "registry_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exemptions",
        sa.Column("exemption_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("node_code", sa.String(12), sa.ForeignKey("registry.nodes.code")),
        sa.Column("unit_code", sa.String(32),
                  sa.ForeignKey("registry.units.code", ondelete="CASCADE")),
        sa.Column("unit_type", sa.String(40)),
        sa.Column("weekday", sa.SmallInteger),  # ISO: 1 Monday … 7 Sunday
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("declared_by", sa.String(100), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        # Ended: valid_to brought back to the day before; withdrawn if it had not begun.
        sa.Column("withdrawn", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("ended_by", sa.String(100)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.String(200)),
        sa.CheckConstraint("node_code IS NOT NULL OR unit_code IS NOT NULL "
                           "OR unit_type IS NOT NULL", name="exemption_scope"),
        sa.CheckConstraint("weekday IS NULL OR weekday BETWEEN 1 AND 7",
                           name="exemption_weekday"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from",
                           name="exemption_period"),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_table("exemptions", schema="registry")
