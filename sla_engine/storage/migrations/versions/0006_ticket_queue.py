"""ticket queue columns, table and indexes.

`tickets.queue_breach_at` (earliest `breach_at` of a running metric whose clock runs;
9999-12-30 when every running metric is paused, 9999-12-31 when none runs) and
`tickets.stopped_late` (a metric stopped after its deadline), `ticket_queue_calendars` (the
calendars the running metrics accrue in, with the ticket's key; listed in
`tickets.queue_calendars`), all filled from the stored metric rows; the indexes the queue
pages through.

Revision ID: 0006
Revises: 0005
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from sla_engine.storage.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NO_BREACH = datetime(9999, 12, 31, tzinfo=UTC)
PAUSED = datetime(9999, 12, 30, tzinfo=UTC)
CLOCK_RUNS = "stopped_at IS NULL AND status <> 'paused'"
CLOCK_PAUSED = "stopped_at IS NULL AND status = 'paused'"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite cannot make a column NOT NULL afterwards without copying the table (which, with
    # foreign keys on, would cascade-delete the events): the new columns get a default there,
    # in SQLite's own text form. The engine always writes both itself.
    op.add_column(
        "tickets",
        sa.Column(
            "queue_breach_at",
            UTCDateTime(),
            nullable=not sqlite,
            server_default=sa.text("'9999-12-31 00:00:00.000000'") if sqlite else None,
        ),
    )
    op.add_column(
        "tickets",
        sa.Column("stopped_late", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "tickets",
        sa.Column("queue_calendars", sa.String(1000), nullable=False, server_default=""),
    )
    op.create_table(
        "ticket_queue_calendars",
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("calendar", sa.String(100), nullable=False),
        sa.Column("queue_breach_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "calendar", name="pk_ticket_queue_calendars"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name="fk_ticket_queue_calendars_ticket_id_tickets",
            ondelete="CASCADE",
        ),
    )
    _fill()
    if not sqlite:
        op.alter_column("tickets", "queue_breach_at", existing_type=UTCDateTime(), nullable=False)
    for name, columns in (
        ("ix_tickets_status_queue_breach_at_id", ["status", "queue_breach_at", "id"]),
        (
            "ix_tickets_status_current_policy_queue_breach_at_id",
            ["status", "current_policy", "queue_breach_at", "id"],
        ),
        (
            "ix_tickets_status_stopped_late_queue_breach_at_id",
            ["status", "stopped_late", "queue_breach_at", "id"],
        ),
        ("ix_tickets_status_created_at_id", ["status", "created_at", "id"]),
    ):
        op.create_index(name, "tickets", columns)
    op.create_index(
        "ix_ticket_queue_calendars_by_breach",
        "ticket_queue_calendars",
        ["calendar", "queue_breach_at", "ticket_id"],
    )
    op.create_index(
        "ix_ticket_queue_calendars_by_created",
        "ticket_queue_calendars",
        ["calendar", "created_at", "ticket_id"],
    )
    op.create_index(
        "ix_ticket_metrics_metric_breach_at_ticket_id",
        "ticket_metrics",
        ["metric", "breach_at", "ticket_id"],
        sqlite_where=sa.text(CLOCK_RUNS),
        postgresql_where=sa.text(CLOCK_RUNS),
    )
    op.create_index(
        "ix_ticket_metrics_metric_ticket_id",
        "ticket_metrics",
        ["metric", "ticket_id"],
        sqlite_where=sa.text(CLOCK_PAUSED),
        postgresql_where=sa.text(CLOCK_PAUSED),
    )


def _fill() -> None:
    """The keys of the tickets already stored, from their metric rows (as the hook sets them)."""
    tickets = sa.table(
        "tickets",
        sa.column("id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("queue_breach_at", UTCDateTime()),
        sa.column("stopped_late", sa.Boolean()),
        sa.column("queue_calendars", sa.String()),
    )
    metrics = sa.table(
        "ticket_metrics",
        sa.column("ticket_id", sa.String()),
        sa.column("calendar", sa.String()),
        sa.column("status", sa.String()),
        sa.column("breach_at", UTCDateTime()),
        sa.column("stopped_at", UTCDateTime()),
    )
    mine = metrics.c.ticket_id == tickets.c.id
    running = sa.and_(mine, metrics.c.stopped_at.is_(None))
    ticking = (
        sa.select(sa.func.min(metrics.c.breach_at))
        .where(running, metrics.c.status != "paused")
        .scalar_subquery()
    )
    idle = sa.case(
        (sa.exists().where(running), sa.literal(PAUSED, UTCDateTime())),
        else_=sa.literal(NO_BREACH, UTCDateTime()),
    )
    late = sa.exists().where(
        mine, metrics.c.stopped_at.is_not(None), metrics.c.status == "breached"
    )
    op.execute(
        tickets.update().values(queue_breach_at=sa.func.coalesce(ticking, idle), stopped_late=late)
    )
    columns = ["ticket_id", "calendar", "queue_breach_at", "created_at"]
    queue_calendars = sa.table("ticket_queue_calendars", *(sa.column(n) for n in columns))
    op.execute(
        queue_calendars.insert().from_select(
            columns,
            sa.select(
                metrics.c.ticket_id,
                metrics.c.calendar,
                tickets.c.queue_breach_at,
                tickets.c.created_at,
            )
            .distinct()
            .select_from(metrics.join(tickets, tickets.c.id == metrics.c.ticket_id))
            .where(metrics.c.stopped_at.is_(None)),
        )
    )
    # each ticket's list of those calendars, one a line, in name order
    listed = (
        "(SELECT string_agg(calendar, E'\\n' ORDER BY calendar) FROM ticket_queue_calendars q "
        "WHERE q.ticket_id = tickets.id)"
        if op.get_bind().dialect.name == "postgresql"
        else "(SELECT group_concat(calendar, char(10)) FROM (SELECT calendar FROM "
        "ticket_queue_calendars q WHERE q.ticket_id = tickets.id ORDER BY calendar))"
    )
    op.execute(
        sa.text(
            f"UPDATE tickets SET queue_calendars = {listed} "
            "WHERE id IN (SELECT ticket_id FROM ticket_queue_calendars)"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_metrics_metric_ticket_id", table_name="ticket_metrics")
    op.drop_index("ix_ticket_metrics_metric_breach_at_ticket_id", table_name="ticket_metrics")
    op.drop_table("ticket_queue_calendars")
    for name in (
        "ix_tickets_status_created_at_id",
        "ix_tickets_status_stopped_late_queue_breach_at_id",
        "ix_tickets_status_current_policy_queue_breach_at_id",
        "ix_tickets_status_queue_breach_at_id",
    ):
        op.drop_index(name, table_name="tickets")
    op.drop_column("tickets", "queue_calendars")
    op.drop_column("tickets", "stopped_late")
    op.drop_column("tickets", "queue_breach_at")
