"""the webhook secret a rotation replaced, and until when webhooks are also signed with it

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("merchants", sa.Column("previous_webhook_secret_enc", sa.Text(), nullable=True))
    op.add_column(
        "merchants",
        sa.Column("previous_webhook_secret_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("merchants", "previous_webhook_secret_until")
    op.drop_column("merchants", "previous_webhook_secret_enc")
