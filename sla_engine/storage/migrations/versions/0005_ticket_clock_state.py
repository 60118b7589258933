"""a ticket's own calendar and its saved clock state.

`tickets.initial_calendar` (as created) and `tickets.calendar` (in force), `tickets.clock_state`
(the replay state after the whole log; NULL for tickets written before: their next write
replays the log once and saves it) and `ticket_checkpoints` (replay states every so many
events, where a late event's replay starts).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from sla_engine.storage.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("initial_calendar", sa.String(100), nullable=True))
    op.add_column("tickets", sa.Column("calendar", sa.String(100), nullable=True))
    op.add_column("tickets", sa.Column("clock_state", sa.JSON(), nullable=True))
    op.create_index(
        "ix_ticket_events_ticket_id_occurred_at_seq",
        "ticket_events",
        ["ticket_id", "occurred_at", "seq"],
    )
    op.create_table(
        "ticket_checkpoints",
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "occurred_at", "seq", name="pk_ticket_checkpoints"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name="fk_ticket_checkpoints_ticket_id_tickets",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("ticket_checkpoints")
    op.drop_index("ix_ticket_events_ticket_id_occurred_at_seq", table_name="ticket_events")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("clock_state")
        batch.drop_column("calendar")
        batch.drop_column("initial_calendar")
