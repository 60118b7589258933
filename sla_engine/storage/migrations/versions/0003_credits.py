"""credits: account lock rows and the append-only credit ledger.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from sla_engine.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_accounts",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name="pk_credit_accounts"),
    )
    op.create_table(
        "credit_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("entry_type", sa.String(40), nullable=False),
        sa.Column("credit_kind", sa.String(20), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.String(200), nullable=True),
        sa.Column("source", sa.String(40), nullable=True),
        sa.Column("price_per_ticket", sa.String(40), nullable=True),
        sa.Column("package", sa.String(100), nullable=True),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_credit_ledger"),
        sa.ForeignKeyConstraint(
            ["account"],
            ["credit_accounts.account"],
            name="fk_credit_ledger_account_credit_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["credit_ledger.id"], name="fk_credit_ledger_lot_id_credit_ledger"
        ),
    )
    op.create_index("ix_credit_ledger_account_id", "credit_ledger", ["account", "id"])
    op.create_index("ix_credit_ledger_ticket_id", "credit_ledger", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_credit_ledger_ticket_id", table_name="credit_ledger")
    op.drop_index("ix_credit_ledger_account_id", table_name="credit_ledger")
    op.drop_table("credit_ledger")
    op.drop_table("credit_accounts")
