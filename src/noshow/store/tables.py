"""The store's schema, defined once: every table and column, the call results and the roles.

The migrations in ``migrations/versions`` build exactly these tables (a test compares them), and
every query in :mod:`noshow.store.repository` is written against them. Times are UTC; an
appointment is known by its ``AppointmentID`` (the clinic's), a patient by its ``PatientId`` text.
"""

from __future__ import annotations

import sqlalchemy as sa

# What a call attempt came to: the codes the call centre records.
CALL_RESULTS = ("reached", "no_answer", "wrong_number", "rescheduled", "cancelled")
REACHED = "reached"
FREEING = ("rescheduled", "cancelled")  # results that free the appointment's slot for someone else
# Callers record calls; analysts also read the monitor and download lists.
ROLES = ("caller", "analyst")
ANALYST = "analyst"
# What the audit log records someone doing with a day's list (never the patients it holds).
AUDIT_ACTIONS = ("read_list", "download_list", "read_calls", "record_call", "read_monitor")
NAME_LENGTH = 200


def _choice(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=f"{column}_known")


metadata = sa.MetaData()

# The models used: the file's SHA-256 and the card's facts (JSON), so that a list names its model.
models = sa.Table(
    "models", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("file_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("card", sa.JSON, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# Every list issued: one day's scored appointments under a policy, by whom and when, with the
# randomised holdout's share and seed when one was drawn (both null without).
lists = sa.Table(
    "lists", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("policy", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("holdout_share", sa.Float, nullable=True),
    sa.Column("holdout_seed", sa.BigInteger, nullable=True),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    # Drift of the scored appointments against the model's training data (noshow.clinic.drift:
    # PSI by feature group, warnings); null where it was not computed.
    sa.Column("drift", sa.JSON, nullable=True),
)

# A list's scored appointments, every one of the day's (flagged or not): what monitor needs to
# compute recall and to judge the appointments nobody acted on. ``held_out``: flagged, but set aside
# by the randomised holdout and not to be called; ``do_not_call``: the patient asked not to be called.
list_rows = sa.Table(
    "list_rows", metadata,
    sa.Column("list_id", sa.Integer, sa.ForeignKey("lists.id"), primary_key=True),
    sa.Column("appointment_id", sa.BigInteger, primary_key=True),
    sa.Column("patient_id", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("held_out", sa.Boolean, nullable=False),
    sa.Column("do_not_call", sa.Boolean, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Index("list_rows_appointment", "appointment_id"),
)

# Call attempts, appended, never updated: two staff on one day each add rows, so neither can
# overwrite the other. ``client_id`` (made by the browser) makes a resent queued result a no-op.
calls = sa.Table(
    "calls", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appointment_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("result", sa.String(20), nullable=False),
    sa.Column("user_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("client_id", sa.String(64), nullable=True, unique=True),
    _choice("result", CALL_RESULTS),
)

# Outcomes from later exports: whether the patient missed the appointment (1) or attended (0).
outcomes = sa.Table(
    "outcomes", metadata,
    sa.Column("appointment_id", sa.BigInteger, primary_key=True),
    sa.Column("missed", sa.Boolean, nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# Appointments of a later export for a day the store has a list for, that are not on its list:
# bookings made for that day after the list, which may fill a slot a call freed (monitor's KPI).
bookings = sa.Table(
    "bookings", metadata,
    sa.Column("appointment_id", sa.BigInteger, primary_key=True),
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# Patients who asked not to be called: every later list leaves them uncalled.
do_not_call = sa.Table(
    "do_not_call", metadata,
    sa.Column("patient_id", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("marked_by", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
)

# People: a token is given once and only its SHA-256 kept (tokens are 256 random bits, so a plain
# hash is enough; a slow password hash protects guessable secrets, which these are not).
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    _choice("role", ROLES),
)

# Who read or downloaded which day's list: the user and the day, never a patient.
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("day", sa.Date, nullable=True),
    _choice("action", AUDIT_ACTIONS),
)

TABLES = tuple(metadata.sorted_tables)
