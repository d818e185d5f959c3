"""aggregate: expected and missing units kept with each node-day; the days whose expected figures
are built; when a unit's report was submitted; indexes for subtree and children scans

Revision ID: aggregate_0002
Revises: aggregate_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "aggregate_0002"
down_revision = "aggregate_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unit_days", sa.Column("submitted_at", sa.DateTime(timezone=True)),
                  schema="aggregate")
    # Units expected that day (active, placed at or below the node) and those of them with no
    # report yet: figures built from the registry for the whole day, then kept by the projector.
    op.add_column("completeness", sa.Column("expected", sa.Integer, nullable=False,
                                            server_default="0"), schema="aggregate")
    op.add_column("completeness", sa.Column("missing", sa.Integer, nullable=False,
                                            server_default="0"), schema="aggregate")
    # Children and subtree scans by code prefix; pattern ops compare bytes, whatever the collation.
    op.execute("CREATE INDEX ix_completeness_day_node ON aggregate.completeness "
               "(day, node_code text_pattern_ops)")
    op.create_table(
        "days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        schema="aggregate",
    )


def downgrade() -> None:
    op.drop_table("days", schema="aggregate")
    op.execute("DROP INDEX aggregate.ix_completeness_day_node")
    op.drop_column("completeness", "missing", schema="aggregate")
    op.drop_column("completeness", "expected", schema="aggregate")
    op.drop_column("unit_days", "submitted_at", schema="aggregate")
