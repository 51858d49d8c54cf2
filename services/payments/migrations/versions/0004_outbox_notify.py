"""outbox notify: a NOTIFY on channel outbox_events in the transaction of every outbox insert

The relay LISTENs on that channel instead of polling the table. A statement-level trigger
covers every insert path (the payments service's one-statement writes, COPY, plain SQL) at no
extra round trip; PostgreSQL delivers the notification at commit (never for a rolled-back
insert) and folds identical notifications of one transaction into one, so the empty payload
keeps a transaction's inserts to one wake-up.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION outbox_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox_events', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION outbox_events_notify()")
