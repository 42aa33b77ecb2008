"""predictions: every answer the API gave, its feedback and its review (issue 23)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("hour", sa.Integer, nullable=False, index=True),
        sa.Column("model_version", sa.Integer, nullable=False, index=True),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("abstained", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("ood_score", sa.Float, nullable=True),
        sa.Column("score_bin", sa.Integer, nullable=True),
        sa.Column("photo_sha256", sa.String(64), nullable=True),
        sa.Column("photo_name", sa.String(200), nullable=True),
        sa.Column("feedback_correct", sa.Boolean, nullable=True),
        sa.Column("feedback_label", sa.String(200), nullable=True),
        sa.Column("feedback_at", sa.DateTime, nullable=True, index=True),
        sa.Column("reviewed_label", sa.String(200), nullable=True),
        sa.Column("reviewed_at", sa.DateTime, nullable=True),
        sa.Column("review_upload_id", sa.String(32), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("predictions")
