"""Each list keeps the drift of its appointments against the model's training data (PSI by
feature group and the warnings), so that monitor can show drift beside realised performance."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lists") as batch:
        batch.add_column(sa.Column("drift", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lists") as batch:
        batch.drop_column("drift")
