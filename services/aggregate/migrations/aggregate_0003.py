"""aggregate: drop aggregate.merge_values, unused

It folded a change into a node-day's values with its own copy of how metrics combine; the
projector merges in Python and recomputes extremes with SQL generated from the one definition
(shared/aggregation.py), so nothing calls it.

Revision ID: aggregate_0003
Revises: aggregate_0002
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "aggregate_0003"
down_revision = "aggregate_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP FUNCTION aggregate.merge_values(jsonb, jsonb, text[], text[])")


def downgrade() -> None:
    # Restored as aggregate_0002 created it.
    spec = importlib.util.spec_from_file_location(
        "aggregate_0002", Path(__file__).with_name("aggregate_0002.py"))
    assert spec is not None and spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    op.execute(previous.MERGE_VALUES)
