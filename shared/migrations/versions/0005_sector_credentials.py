"""registry: an operator's credential may be scoped to a sector (行业部门) as well as a node

A sector operator (the county's education bureau) reaches only the units of its sector below
its node; NULL is a territorial operator (屬地), who reaches every unit below the node.

Revision ID: registry_0005
Revises: registry_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0005"
down_revision = "registry_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("credentials", sa.Column("sector", sa.String(40)), schema="registry")
    op.create_check_constraint("credential_sector_operator",
                               "credentials", "sector IS NULL OR kind = 'operator'",
                               schema="registry")


def downgrade() -> None:
    op.drop_constraint("credential_sector_operator", "credentials", schema="registry")
    op.drop_column("credentials", "sector", schema="registry")
