"""escalations tables: timers, deliveries (outbox), destination state.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from sla_engine.storage.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalation_timers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.String(32), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("calendar", sa.String(200), nullable=False),
        sa.Column("breach_at", UTCDateTime(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_escalation_timers"),
        sa.UniqueConstraint(
            "ticket_id", "metric", "cycle", "threshold", name="uq_escalation_timers_key"
        ),
    )
    op.create_index("ix_escalation_timers_status_due", "escalation_timers", ["status", "due_at"])
    op.create_index("ix_escalation_timers_ticket", "escalation_timers", ["ticket_id", "metric"])
    op.create_table(
        "escalation_deliveries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("timer_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.String(32), nullable=False),
        sa.Column("destination", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_escalation_deliveries"),
    )
    op.create_index(
        "ix_escalation_deliveries_status_next", "escalation_deliveries", ["status", "not_before"]
    )
    op.create_index(
        "ix_escalation_deliveries_ticket", "escalation_deliveries", ["ticket_id", "metric", "cycle"]
    )
    op.create_table(
        "escalation_destinations",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_escalation_destinations"),
    )


def downgrade() -> None:
    op.drop_table("escalation_destinations")
    op.drop_index("ix_escalation_deliveries_ticket", table_name="escalation_deliveries")
    op.drop_index("ix_escalation_deliveries_status_next", table_name="escalation_deliveries")
    op.drop_table("escalation_deliveries")
    op.drop_index("ix_escalation_timers_ticket", table_name="escalation_timers")
    op.drop_index("ix_escalation_timers_status_due", table_name="escalation_timers")
    op.drop_table("escalation_timers")
