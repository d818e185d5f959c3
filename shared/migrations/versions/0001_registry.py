"""registry: the hierarchy, reporting units and their placements

Revision ID: registry_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS registry")
    op.create_table(
        "nodes",
        sa.Column("code", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("parent_code", sa.String(12), sa.ForeignKey("registry.nodes.code"), index=True),
        schema="registry",
    )
    op.create_table(
        "units",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("sector", sa.String(40), nullable=False),
        sa.Column("active_from", sa.Date),
        sa.Column("active_to", sa.Date),
        sa.Column("cutoff", sa.Time),
        schema="registry",
    )
    op.create_table(
        "placements",
        sa.Column("unit_code", sa.String(32),
                  sa.ForeignKey("registry.units.code", ondelete="CASCADE"), primary_key=True),
        sa.Column("valid_from", sa.Date, primary_key=True),
        sa.Column("node_code", sa.String(12), sa.ForeignKey("registry.nodes.code"), nullable=False),
        schema="registry",
    )
    op.create_index("ix_placements_node", "placements", ["node_code", "valid_from"],
                    schema="registry")


def downgrade() -> None:
    op.execute("DROP SCHEMA registry CASCADE")
