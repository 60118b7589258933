"""re-plan slices: a re-plan job's row may cover a range of ticket ids, so several processes
work one job at once.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_replans") as batch:
        batch.add_column(sa.Column("after_ticket", sa.String(200), nullable=True))
        batch.add_column(sa.Column("through_ticket", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendar_replans") as batch:
        batch.drop_column("through_ticket")
        batch.drop_column("after_ticket")
