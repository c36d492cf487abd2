"""The first schema: models, lists and their rows, calls, outcomes, do-not-call, users, audit.

A migration is history: it states the tables as they were at this version, so it does not import
:mod:`noshow.store.tables` (which will move on); a test checks the migrated store equals it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RESULTS = "'reached', 'no_answer', 'wrong_number', 'rescheduled', 'cancelled'"
ACTIONS = "'read_list', 'download_list', 'read_calls', 'record_call', 'read_monitor'"


def _when(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        _when("recorded_at"))
    op.create_table(
        "lists",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("policy", sa.String(200), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        _when("created_at"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("holdout_share", sa.Float, nullable=True),
        sa.Column("holdout_seed", sa.BigInteger, nullable=True),
        sa.Column("source_sha256", sa.String(64), nullable=False))
    op.create_table(
        "list_rows",
        sa.Column("list_id", sa.Integer, sa.ForeignKey("lists.id"), primary_key=True),
        sa.Column("appointment_id", sa.BigInteger, primary_key=True),
        sa.Column("patient_id", sa.String(200), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("held_out", sa.Boolean, nullable=False),
        sa.Column("do_not_call", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Index("list_rows_appointment", "appointment_id"))
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("appointment_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("result", sa.String(20), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        _when("called_at"),
        _when("recorded_at"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("client_id", sa.String(64), nullable=True, unique=True),
        sa.CheckConstraint(f"result IN ({RESULTS})", name="result_known"))
    op.create_table(
        "outcomes",
        sa.Column("appointment_id", sa.BigInteger, primary_key=True),
        sa.Column("missed", sa.Boolean, nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        _when("recorded_at"))
    op.create_table(
        "do_not_call",
        sa.Column("patient_id", sa.String(200), primary_key=True),
        sa.Column("marked_by", sa.String(200), nullable=False),
        _when("marked_at"),
        sa.Column("note", sa.Text, nullable=False, server_default=""))
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        _when("created_at"),
        sa.CheckConstraint("role IN ('caller', 'analyst')", name="role_known"))
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        _when("at"),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("day", sa.Date, nullable=True),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name="action_known"))


def downgrade() -> None:
    for table in ("audit", "users", "do_not_call", "outcomes", "calls", "list_rows", "lists", "models"):
        op.drop_table(table)
