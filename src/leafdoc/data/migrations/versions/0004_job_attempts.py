"""training jobs: attempts (a job whose worker is lost is queued again) and the epoch an attempt resumed after

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        # Rows of older versions count as not yet attempted (a running one then as its first attempt).
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("resumed_epoch", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("resumed_epoch")
        batch.drop_column("attempts")
