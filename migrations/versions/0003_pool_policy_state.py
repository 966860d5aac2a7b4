"""Pool policy state: each policy's stabilisation history and calibration, for restarts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.add_column(
            sa.Column("policy_state", JSON_DOCUMENT, nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("pools") as batch:
        batch.alter_column("policy_state", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("policy_state")
