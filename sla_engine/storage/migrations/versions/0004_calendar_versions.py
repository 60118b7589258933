"""calendar versions (stored calendars, their versions, re-plan jobs).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from sla_engine.storage.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_calendars"),
    )
    op.create_table(
        "calendar_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", UTCDateTime(), nullable=True),
        sa.Column("known_from", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retroactive", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_versions"),
        sa.ForeignKeyConstraint(
            ["name"], ["calendars.name"], name="fk_calendar_versions_name_calendars"
        ),
        sa.UniqueConstraint("name", "version", name="uq_calendar_versions_name_version"),
    )
    op.create_table(
        "calendar_replans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("calendar", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", UTCDateTime(), nullable=True),
        sa.Column("retroactive", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("cursor", sa.String(200), nullable=True),
        sa.Column("tickets_done", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_replans"),
    )
    op.create_index("ix_calendar_replans_finished_at_id", "calendar_replans", ["finished_at", "id"])
    # The re-plan walk: the tickets with a metric on a calendar, in ticket id order.
    op.create_index(
        "ix_ticket_metrics_calendar_ticket_id", "ticket_metrics", ["calendar", "ticket_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_metrics_calendar_ticket_id", table_name="ticket_metrics")
    op.drop_index("ix_calendar_replans_finished_at_id", table_name="calendar_replans")
    op.drop_table("calendar_replans")
    op.drop_table("calendar_versions")
    op.drop_table("calendars")
