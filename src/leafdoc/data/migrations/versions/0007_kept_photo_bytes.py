"""kept photos' quota and retention: predictions.photo_bytes (what keeping the row's photo added to the store: 0 when
the blob was there already), an index on predictions.photo_sha256, and a `counters` table whose row
`kept_photo_bytes` is the total, updated in the transaction that records the photos (data/predictions.py)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("photo_bytes", sa.BigInteger, nullable=True))
        batch.create_index("ix_predictions_photo_sha256", ["photo_sha256"])
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    # Photos kept before this migration have no size in the catalog: they are not counted (retention removes them).
    op.bulk_insert(counters, [{"name": "kept_photo_bytes", "value": 0}])


def downgrade() -> None:
    op.drop_table("counters")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index("ix_predictions_photo_sha256")
        batch.drop_column("photo_bytes")
