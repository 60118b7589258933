"""tickets, their event log and their metrics' current cycle.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from sla_engine.storage.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("current_policy", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("account", sa.String(200), nullable=True),
        sa.Column("product", sa.String(100), nullable=True),
        sa.Column("version", sa.String(100), nullable=True),
        sa.Column("legacy", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
    )
    op.create_index("ix_tickets_account", "tickets", ["account"])

    op.create_table(
        "ticket_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_ticket_events"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name="fk_ticket_events_ticket_id_tickets",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("ticket_id", "event_id", name="uq_ticket_events_ticket_id_event_id"),
    )

    op.create_table(
        "ticket_metrics",
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("calendar", sa.String(100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("target_at", UTCDateTime(), nullable=True),
        sa.Column("breach_at", UTCDateTime(), nullable=True),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("business_elapsed_s", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "metric", name="pk_ticket_metrics"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name="fk_ticket_metrics_ticket_id_tickets",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_ticket_metrics_breach_at", "ticket_metrics", ["breach_at"])
    op.create_index("ix_ticket_metrics_status_breach_at", "ticket_metrics", ["status", "breach_at"])


def downgrade() -> None:
    op.drop_table("ticket_metrics")
    op.drop_table("ticket_events")
    op.drop_index("ix_tickets_account", table_name="tickets")
    op.drop_table("tickets")
