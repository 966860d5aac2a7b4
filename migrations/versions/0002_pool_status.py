"""Pool status: the replicas and conditions last written to the custom resource.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.add_column(
            sa.Column("status", JSON_DOCUMENT, nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("pools") as batch:
        batch.alter_column("status", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("status")
