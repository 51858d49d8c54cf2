"""monthly usage: the durable payment quota count; outbox index for retention

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
    op.create_table(
        "monthly_usage",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("payments", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "period"),
    )
    # Existing payments count as usage of their month.
    op.execute(
        "INSERT INTO monthly_usage (merchant_id, period, payments) "
        "SELECT merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM'), count(*) "
        "FROM payments GROUP BY 1, 2"
    )
    op.create_index(
        "ix_outbox_published",
        "outbox_events",
        ["published_at"],
        postgresql_where=sa.text("state = 'published'"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_published", table_name="outbox_events")
    op.drop_table("monthly_usage")
