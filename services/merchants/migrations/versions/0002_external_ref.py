"""external reference (the Merchant resource's uid); names unique among live merchants only

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
    op.add_column("merchants", sa.Column("external_ref", sa.String(length=100), nullable=True))
    op.create_index("uq_merchants_external_ref", "merchants", ["external_ref"], unique=True)
    op.drop_constraint("merchants_name_key", "merchants", type_="unique")
    op.create_index(
        "uq_merchants_live_name",
        "merchants",
        ["name"],
        unique=True,
        postgresql_where=sa.text("status <> 'deleted'"),
    )


def downgrade() -> None:
    op.drop_index("uq_merchants_live_name", table_name="merchants")
    op.create_unique_constraint("merchants_name_key", "merchants", ["name"])
    op.drop_index("uq_merchants_external_ref", table_name="merchants")
    op.drop_column("merchants", "external_ref")
