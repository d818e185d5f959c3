"""registry: credentials for units and operators (tokens stored hashed)

Revision ID: registry_0002
Revises: registry_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("credential_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('unit', 'operator')", name="credential_kind"),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_table("credentials", schema="registry")
