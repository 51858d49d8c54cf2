"""reconciliation: per-payment check state, and an index over unfinished payments

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_checks",
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unreachable_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("payment_id"),
    )
    # Only unfinished payments are ever looked at: a small partial index, however many
    # finished payments the table holds.
    op.create_index(
        "ix_payments_unfinished",
        "payments",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_unfinished", table_name="payments")
    op.drop_table("reconciliation_checks")
