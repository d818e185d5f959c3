"""aggregate: one row per node and day holding its rollup and its completeness; the days whose
expected figures are built; when a unit's report was submitted

A node-day row keeps the values of its metrics (a JSON object) beside the units expected,
reported, zero-reported, late and missing, so that a report costs one row per level rather than
one per level and metric. `aggregate.rollups` and `aggregate.completeness` remain as views.

Revision ID: aggregate_0002
Revises: aggregate_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "aggregate_0002"
down_revision = "aggregate_0001"
branch_labels = None
depends_on = None

# Folds a change into a node-day's values: sums add, a max only rises, a min only falls.
MERGE_VALUES = """
CREATE FUNCTION aggregate.merge_values(old jsonb, delta jsonb, maxes text[], mins text[])
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    k text;
    v jsonb;
    was float8;
    now float8;
BEGIN
    FOR k, v IN SELECT * FROM jsonb_each(delta) LOOP
        now := v::float8;
        IF old ? k THEN
            was := (old -> k)::float8;
            IF k = ANY(maxes) THEN
                now := greatest(was, now);
            ELSIF k = ANY(mins) THEN
                now := least(was, now);
            ELSE
                now := was + now;
            END IF;
        END IF;
        old := jsonb_set(old, ARRAY[k], to_jsonb(now));
    END LOOP;
    RETURN old;
END
$$
"""


def upgrade() -> None:
    op.add_column("unit_days", sa.Column("submitted_at", sa.DateTime(timezone=True)),
                  schema="aggregate")
    op.drop_table("rollups", schema="aggregate")
    op.drop_table("completeness", schema="aggregate")
    op.create_table(
        "node_days",
        sa.Column("node_code", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("values", JSONB, nullable=False, server_default="{}"),
        # Units expected that day (active, placed at or below the node), built from the registry
        # for the whole day at once, and those of them with no report yet.
        sa.Column("expected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reported", sa.Integer, nullable=False, server_default="0"),
        sa.Column("zero", sa.Integer, nullable=False, server_default="0"),
        sa.Column("late", sa.Integer, nullable=False, server_default="0"),
        sa.Column("missing", sa.Integer, nullable=False, server_default="0"),
        schema="aggregate",
        # Rows are updated over and over: room on the page keeps the updates HOT.
        postgresql_with={"fillfactor": 70},
    )
    # Children and subtree scans by code prefix; pattern ops compare bytes, whatever the collation.
    op.execute("CREATE INDEX ix_node_days_day_node ON aggregate.node_days "
               "(day, node_code text_pattern_ops)")
    op.create_table(
        "days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        schema="aggregate",
    )
    op.execute(MERGE_VALUES)
    op.execute("""
        CREATE VIEW aggregate.rollups AS
        SELECT nd.node_code, nd.day, kv.key AS metric, CAST(kv.value AS float8) AS value
        FROM aggregate.node_days nd CROSS JOIN LATERAL jsonb_each(nd.values) AS kv
    """)
    op.execute("""
        CREATE VIEW aggregate.completeness AS
        SELECT node_code, day, expected, reported, zero, late, missing FROM aggregate.node_days
    """)


def downgrade() -> None:
    op.execute("DROP VIEW aggregate.completeness")
    op.execute("DROP VIEW aggregate.rollups")
    op.execute("DROP FUNCTION aggregate.merge_values(jsonb, jsonb, text[], text[])")
    op.drop_table("days", schema="aggregate")
    op.drop_table("node_days", schema="aggregate")
    op.create_table(
        "rollups",
        sa.Column("node_code", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("metric", sa.String(40), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        schema="aggregate",
    )
    op.create_table(
        "completeness",
        sa.Column("node_code", sa.String(12), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("reported", sa.Integer, nullable=False),
        sa.Column("zero", sa.Integer, nullable=False),
        sa.Column("late", sa.Integer, nullable=False),
        schema="aggregate",
    )
    op.drop_column("unit_days", "submitted_at", schema="aggregate")
