"""attempt states: drop 'skipped'

An unusable provider is recorded as a ``provider.skipped`` timeline event, never as an attempt,
so no attempt row was ever written in that state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 20:15:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD = "state IN ('sending','accepted','failed','canceled','unknown','skipped')"
_NEW = "state IN ('sending','accepted','failed','canceled','unknown')"


def upgrade() -> None:
    op.drop_constraint("state_known", "attempts", type_="check")
    op.create_check_constraint("state_known", "attempts", _NEW)


def downgrade() -> None:
    op.drop_constraint("state_known", "attempts", type_="check")
    op.create_check_constraint("state_known", "attempts", _OLD)
