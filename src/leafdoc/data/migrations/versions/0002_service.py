"""model registry, serving pointer, training jobs, uploads, leases

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("parent_version", sa.Integer, nullable=True),
        sa.Column("dataset", sa.String(200), nullable=True),
        sa.Column("dataset_version", sa.Integer, nullable=True),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("promotion", sa.JSON, nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "serving_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer, sa.ForeignKey("model_versions.version"), nullable=False),
        sa.Column("previous_version", sa.Integer, nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=True),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("warm_start", sa.Boolean, nullable=False),
        sa.Column("parent_version", sa.Integer, nullable=True),
        sa.Column("upload_id", sa.String(32), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("started", sa.DateTime, nullable=True),
        sa.Column("finished", sa.DateTime, nullable=True),
        sa.Column("heartbeat", sa.DateTime, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("epochs", sa.Integer, nullable=False),
        sa.Column("progress", sa.JSON, nullable=True),
        sa.Column("metrics", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("candidate_version", sa.Integer, nullable=True),
        sa.Column("promotion", sa.JSON, nullable=True),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dataset", sa.String(200), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("created_version", sa.Boolean, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("uploads")
    op.drop_table("training_jobs")
    op.drop_table("serving_events")
    op.drop_table("model_versions")
