"""delivery: a partial index of the deliveries still to send, in claim order per channel

The claim takes a channel's oldest due delivery (``monitor.alerts.outbox``). With only
``ix_delivery_due (status, next_attempt_at)`` SQLite found every due row of the backlog and
sorted them for each claim (~0.8 ms at 300 pending, growing with the backlog). This index holds
only the open deliveries (pending, failed, sending: sent and dead ones, the history, are not in
it) ordered by (channel, id), so a claim reads the first entries of its channel; the claim
repeats the index's condition word for word so that SQLite's planner may use it.

Revision ID: 0602
Revises: 0601
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0602"
down_revision: str | None = "0601"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('pending', 'failed', 'sending')"


def upgrade() -> None:
    op.create_index("ix_delivery_open", "delivery", ["channel", "id"], unique=False,
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index("ix_delivery_open", table_name="delivery")
