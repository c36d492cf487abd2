"""Bookings: appointments of a later export for a listed day that are not on its list, kept so
that monitor can count the slots freed by calls that were booked again."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("appointment_id", sa.BigInteger, primary_key=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False))


def downgrade() -> None:
    op.drop_table("bookings")
