"""images, datasets, dataset versions and their items

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
        sa.Column("phash", sa.BigInteger, nullable=False, index=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("parent_version", sa.Integer, nullable=True),
        sa.Column("n_images", sa.Integer, nullable=False),
        sa.Column("n_classes", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.UniqueConstraint("dataset_id", "version"),
    )
    op.create_table(
        "dataset_items",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("images.sha256"), primary_key=True),
        sa.Column("label", sa.String(200), nullable=False, index=True),
        sa.Column("source_name", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dataset_items")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
    op.drop_table("images")
