"""What the commands and the service read from and write to the store.

Every function takes the engine of :func:`noshow.store.database.open_store` and runs in one
transaction, so that a process killed at any moment leaves each change whole or absent. Calls are
appended and never updated: two staff recording results for one day at once each add their own
rows, and a result sent twice (a browser resending its queue) is recorded once by its client ID.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass

import numpy as np
import polars as pl
import sqlalchemy as sa

from noshow.clinic import scoring
from noshow.data import schema as S
from noshow.errors import NoshowError
from noshow.store import holdout
from noshow.store import tables as T

WITHHELD = "withheld"  # the issued list's column: why a flagged appointment is not to be called
HOLDOUT_NOTE = "randomised holdout: not to be called"
DO_NOT_CALL_NOTE = "do not call: the patient asked"
TOKEN_BYTES = 32
MAX_NOTE = 2_000


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _insert_ignoring(connection, table: sa.Table, rows: list[dict], key: str) -> int:
    """Insert ``rows``, skipping those whose ``key`` is already stored; the number inserted."""
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # Counted from RETURNING: a driver's rowcount after executemany is not reliable.
    statement = insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    return len(connection.execute(statement, rows).all())


# --------------------------------------------------------------------------------------------------
# Users and the audit log


def add_user(engine: sa.Engine, name: str, role: str) -> str:
    """Add a user; the token to give them, shown this once (only its SHA-256 is stored)."""
    if role not in T.ROLES:
        raise NoshowError(f"--role: {role!r} is not one of {', '.join(T.ROLES)}")
    if not name.strip() or len(name) > T.NAME_LENGTH:
        raise NoshowError(f"user name {name!r}: give 1 to {T.NAME_LENGTH} characters")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with engine.begin() as connection:
        if connection.execute(sa.select(T.users.c.id).where(T.users.c.name == name)).first():
            raise NoshowError(f"user {name!r} exists already; choose another name")
        connection.execute(sa.insert(T.users).values(name=name, role=role, token_sha256=token_hash(token),
                                                     created_at=now()))
    return token


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_analyst(self) -> bool:
        return self.role == T.ANALYST


def user_for_token(engine: sa.Engine, token: str) -> User | None:
    """The user whose token this is, or None."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(T.users.c.name, T.users.c.role)
                                 .where(T.users.c.token_sha256 == token_hash(token))).first()
    return User(*row) if row else None


def has_users(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(T.users)).scalar_one() > 0


def audit(engine: sa.Engine, user: str, action: str, day: datetime.date | None = None) -> None:
    """Record that ``user`` did ``action`` (one of :data:`~noshow.store.tables.AUDIT_ACTIONS`) on ``day``'s list."""
    with engine.begin() as connection:
        connection.execute(sa.insert(T.audit).values(at=now(), user_name=user, action=action, day=day))


# --------------------------------------------------------------------------------------------------
# Lists


@dataclass(frozen=True)
class ModelFacts:
    """What the store keeps of a model: its file's SHA-256, its name and its card's facts."""

    file_sha256: str
    name: str
    card: dict

    @classmethod
    def of(cls, model_path: str, model) -> "ModelFacts":
        import os

        from noshow.clinic.card import card_facts
        from noshow.data.loader import file_sha256

        name = os.path.basename(model_path)
        return cls(file_sha256(model_path), name, card_facts(model, name))


def record_model(connection, facts: ModelFacts) -> int:
    """The model's row ID (the row added the first time its file is seen)."""
    column = T.models.c.file_sha256
    _insert_ignoring(connection, T.models, [{"file_sha256": facts.file_sha256, "name": facts.name, "card": facts.card,
                                             "recorded_at": now()}], "file_sha256")
    return connection.execute(sa.select(T.models.c.id).where(column == facts.file_sha256)).scalar_one()


def do_not_call_patients(connection, patients: list[str]) -> set[str]:
    found = connection.execute(sa.select(T.do_not_call.c.patient_id)
                               .where(T.do_not_call.c.patient_id.in_(sorted(set(patients)))))
    return {row[0] for row in found}


def withheld(scores: pl.DataFrame, marked: set[str], share: float | None, seed: int | None) -> pl.DataFrame:
    """``scores`` with :data:`WITHHELD` (why a flagged row is not to be called: do-not-call, or
    drawn into the randomised holdout; empty otherwise) and ``flagged`` kept only for the rows to call.
    The holdout is drawn among the flagged rows that may be called."""
    flagged = scores[scoring.FLAGGED].to_numpy().astype(bool)
    asked = scores[S.PATIENT_ID].is_in(sorted(marked)).to_numpy() & flagged
    held = np.zeros(scores.height, bool)
    if share:
        days = scores[S.APPOINTMENT_DAY].to_numpy()
        ids = scores[S.APPOINTMENT_ID].to_numpy()
        for day in np.unique(days[flagged & ~asked]):
            rows = np.flatnonzero(flagged & ~asked & (days == day))
            held[rows] = holdout.draw(ids[rows], _as_date(day), share, seed)
    note = np.where(asked, DO_NOT_CALL_NOTE, np.where(held, HOLDOUT_NOTE, ""))
    return scores.with_columns(pl.Series(scoring.FLAGGED, (flagged & ~asked & ~held).astype(np.int8)),
                               pl.Series(WITHHELD, note))


def _as_date(value) -> datetime.date:
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(np.datetime64(value, "D")))


@dataclass(frozen=True)
class Issued:
    """What :func:`issue_lists` recorded: the list IDs by day, and the rows as issued."""

    list_ids: dict
    scores: pl.DataFrame
    already_called: int  # flagged appointments with a call recorded before this list

    @property
    def held_out(self) -> int:
        return int((self.scores[WITHHELD] == HOLDOUT_NOTE).sum())

    @property
    def do_not_call(self) -> int:
        return int((self.scores[WITHHELD] == DO_NOT_CALL_NOTE).sum())


def issue_lists(engine: sa.Engine, scores: pl.DataFrame, model: ModelFacts, policy: str, rule: str,
                user: str, source_sha256: str, holdout_share: float | None = None,
                holdout_seed: int | None = None, drift: dict | None = None) -> Issued:
    """Record ``scores`` (:func:`noshow.clinic.scoring.score`'s frame) as one list per day, after
    leaving out do-not-call patients and drawing the holdout; the issued rows come back with
    :data:`WITHHELD`, ``flagged`` meaning "to call". ``drift``: :func:`noshow.clinic.drift.check_scored`'s
    report of the scored appointments, kept with each list as its groups' PSI and its warnings."""
    holdout.check_share(holdout_share, holdout_seed)
    drift = None if drift is None else {"groups": drift.get("groups", {}), "warnings": drift.get("warnings", [])}
    with engine.begin() as connection:
        model_id = record_model(connection, model)
        issued = withheld(scores, do_not_call_patients(connection, scores[S.PATIENT_ID].to_list()),
                          holdout_share, holdout_seed)
        list_ids = {}
        for (day,), rows in issued.group_by(S.APPOINTMENT_DAY, maintain_order=True):
            list_ids[day] = connection.execute(sa.insert(T.lists).values(
                day=day, policy=policy, rule=rule, model_id=model_id, created_at=now(), created_by=user,
                holdout_share=holdout_share if holdout_share else None,
                holdout_seed=holdout_seed if holdout_share else None, source_sha256=source_sha256, drift=drift)
                .returning(T.lists.c.id)).scalar_one()
            connection.execute(sa.insert(T.list_rows), _list_rows(list_ids[day], rows))
        to_call = issued.filter(pl.col(scoring.FLAGGED) == 1)[S.APPOINTMENT_ID].to_list()
        called = connection.execute(sa.select(sa.func.count(sa.distinct(T.calls.c.appointment_id)))
                                    .where(T.calls.c.appointment_id.in_(to_call))).scalar_one() if to_call else 0
    return Issued(list_ids, issued, called)


def _list_rows(list_id: int, rows: pl.DataFrame) -> list[dict]:
    note = rows[WITHHELD].to_list()
    return [{"list_id": list_id, "appointment_id": r[S.APPOINTMENT_ID], "patient_id": str(r[S.PATIENT_ID]),
             "probability": float(r[scoring.PROBABILITY]), "rank": int(r[scoring.RANK]),
             "flagged": bool(r[scoring.FLAGGED]) or bool(n), "held_out": n == HOLDOUT_NOTE,
             "do_not_call": n == DO_NOT_CALL_NOTE, "reasons": r[scoring.REASONS]}
            for r, n in zip(rows.iter_rows(named=True), note)]


def mark_do_not_call(engine: sa.Engine, patient: str, user: str, note: str = "") -> bool:
    """Mark a patient not to be called by any later list; False when already marked."""
    with engine.begin() as connection:
        return _insert_ignoring(connection, T.do_not_call, [{"patient_id": patient, "marked_by": user,
                                                              "marked_at": now(), "note": note}], "patient_id") == 1


# --------------------------------------------------------------------------------------------------
# Calls


@dataclass(frozen=True)
class Call:
    """One call attempt as a caller records it."""

    appointment_id: int
    day: datetime.date
    result: str
    note: str = ""
    client_id: str | None = None
    called_at: datetime.datetime | None = None

    def check(self) -> None:
        if self.result not in T.CALL_RESULTS:
            raise NoshowError(f"result: {self.result!r} is not one of {', '.join(T.CALL_RESULTS)}")
        if len(self.note) > MAX_NOTE:
            raise NoshowError(f"note: {len(self.note):,} characters; at most {MAX_NOTE:,}")
        if self.client_id is not None and not 0 < len(self.client_id) <= 64:
            raise NoshowError("client_id: give 1 to 64 characters")


def record_calls(engine: sa.Engine, calls: list[Call], user: str) -> int:
    """Append call attempts by ``user``; each must be for an appointment on a recorded list of its
    day. The number recorded (a client ID already stored is not recorded again)."""
    for call in calls:
        call.check()
    with engine.begin() as connection:
        pairs = {(c.appointment_id, c.day) for c in calls}
        known = set(connection.execute(
            sa.select(T.list_rows.c.appointment_id, T.lists.c.day).join(T.lists)
            .where(T.list_rows.c.appointment_id.in_(sorted({a for a, _ in pairs})))).all())
        missing = sorted(pairs - {(a, d) for a, d in known})
        if missing:
            appointment, day = missing[0]
            raise NoshowError(f"appointment {appointment} is on no list recorded for {day}")
        stamp = now()
        rows = [{"appointment_id": c.appointment_id, "day": c.day, "result": c.result, "user_name": user,
                 "called_at": c.called_at or stamp, "recorded_at": stamp, "note": c.note,
                 "client_id": c.client_id} for c in calls]
        # In the order sent; a NULL client ID never conflicts (NULLs are distinct in a unique index).
        return _insert_ignoring(connection, T.calls, rows, "client_id")


def calls_on(engine: sa.Engine, day: datetime.date) -> list[dict]:
    """The day's call attempts, oldest first: appointment, result, who, when, note, client ID."""
    c = T.calls.c
    with engine.connect() as connection:
        found = connection.execute(sa.select(c.appointment_id, c.result, c.user_name, c.called_at, c.note, c.client_id)
                                   .where(c.day == day).order_by(c.called_at, c.id)).mappings().all()
    return [{**row, "called_at": _utc_text(row["called_at"])} for row in found]


def _utc_text(when: datetime.datetime) -> str:
    if when.tzinfo is None:  # SQLite keeps no zone: stored as UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True)
class OutcomesRecorded:
    new: int
    unchanged: int
    unknown: int  # appointments on no recorded list: not stored
    conflicts: list[tuple[int, bool, bool]]  # (AppointmentID, stored missed, export's missed): kept as stored


def record_outcomes(engine: sa.Engine, appointment_ids: np.ndarray, missed: np.ndarray, source_sha256: str) -> OutcomesRecorded:
    """Record attended (0) or missed (1) for the appointments the store has listed. Idempotent: an
    outcome already stored is left alone, and one that differs is reported, not overwritten."""
    given = dict(zip(np.asarray(appointment_ids, dtype=np.int64).tolist(), np.asarray(missed).astype(bool).tolist()))
    with engine.begin() as connection:
        listed = _existing(connection, T.list_rows.c.appointment_id, list(given))
        stored = dict(connection.execute(sa.select(T.outcomes.c.appointment_id, T.outcomes.c.missed)
                                         .where(T.outcomes.c.appointment_id.in_(sorted(listed)))).all()) if listed else {}
        new = [a for a in sorted(listed) if a not in stored]
        if new:
            stamp = now()
            connection.execute(sa.insert(T.outcomes), [{"appointment_id": a, "missed": given[a],
                                                         "source_sha256": source_sha256, "recorded_at": stamp} for a in new])
    conflicts = [(a, bool(stored[a]), given[a]) for a in sorted(stored) if bool(stored[a]) != given[a]]
    return OutcomesRecorded(len(new), len(stored) - len(conflicts), len(given) - len(listed), conflicts)


def _existing(connection, column, values: list[int], chunk: int = 10_000) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(values), chunk):
        part = values[start:start + chunk]
        found |= {r[0] for r in connection.execute(sa.select(column).distinct().where(column.in_(part)))}
    return found


# --------------------------------------------------------------------------------------------------
# What monitor and train read


def latest_lists() -> sa.Subquery:
    """The last list issued for each day (a day's list issued again replaces the earlier one)."""
    return sa.select(sa.func.max(T.lists.c.id).label("id")).group_by(T.lists.c.day).subquery()


def listed_appointments(engine: sa.Engine) -> pl.DataFrame:
    """One row per appointment of each day's latest list: day, IDs, probability, rank, flagged (by
    the policy), held_out, do_not_call, called (any attempt), reached (any attempt reached),
    missed (null until an outcome came back), and the list's policy, holdout share and model."""
    r, lst, o = T.list_rows.c, T.lists.c, T.outcomes.c
    attempts = (sa.select(T.calls.c.appointment_id,
                          sa.func.count().label("attempts"),
                          sa.func.sum(sa.case((T.calls.c.result == T.REACHED, 1), else_=0)).label("reached"))
                .group_by(T.calls.c.appointment_id).subquery())
    latest = latest_lists()
    query = (sa.select(lst.day, r.appointment_id, r.patient_id, r.probability, r.rank, r.flagged, r.held_out,
                       r.do_not_call, attempts.c.attempts, attempts.c.reached, o.missed, lst.policy,
                       lst.holdout_share, lst.model_id)
             .select_from(T.list_rows.join(T.lists).join(latest, latest.c.id == lst.id)
                          .outerjoin(attempts, attempts.c.appointment_id == r.appointment_id)
                          .outerjoin(T.outcomes, o.appointment_id == r.appointment_id))
             .order_by(lst.day, r.rank))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    schema = {"day": pl.Date, "appointment_id": pl.Int64, "patient_id": pl.String, "probability": pl.Float64,
              "rank": pl.Int64, "flagged": pl.Boolean, "held_out": pl.Boolean, "do_not_call": pl.Boolean,
              "attempts": pl.Int64, "reached": pl.Int64, "missed": pl.Boolean, "policy": pl.String,
              "holdout_share": pl.Float64, "model_id": pl.Int64}
    frame = pl.DataFrame([tuple(row) for row in rows], schema=schema, orient="row")
    return frame.with_columns(pl.col("attempts").fill_null(0), (pl.col("reached").fill_null(0) > 0).alias("reached"))


def acted_on(engine: sa.Engine) -> set[int]:
    """AppointmentIDs someone acted on: put on a list to call (flagged, not held out, not
    do-not-call) or called at all. Their outcomes are not the untreated risk a model learns."""
    with engine.connect() as connection:
        listed = connection.execute(sa.select(T.list_rows.c.appointment_id).where(
            T.list_rows.c.flagged & ~T.list_rows.c.held_out & ~T.list_rows.c.do_not_call)).scalars().all()
        called = connection.execute(sa.select(T.calls.c.appointment_id).distinct()).scalars().all()
    return set(listed) | set(called)


def model_card(engine: sa.Engine, model_id: int) -> dict:
    with engine.connect() as connection:
        return connection.execute(sa.select(T.models.c.card).where(T.models.c.id == model_id)).scalar_one()


def _latest_calls():
    """Each appointment's latest call attempt's row id."""
    c = T.calls.c
    return sa.select(c.appointment_id, sa.func.max(c.id).label("id")).group_by(c.appointment_id).subquery()


def freed_slots(engine: sa.Engine) -> dict:
    """Appointments whose latest call ended rescheduled or cancelled: slots a clinic can offer again."""
    c, latest = T.calls.c, _latest_calls()
    query = (sa.select(c.result, sa.func.count()).join(latest, latest.c.id == c.id)
             .where(c.result.in_(T.FREEING)).group_by(c.result))
    with engine.connect() as connection:
        counts = dict(connection.execute(query).all())
    return {result: counts.get(result, 0) for result in T.FREEING}


def _naive_utc(when: datetime.datetime) -> datetime.datetime:
    """``when`` as naive UTC: SQLite returns stored times naive, PostgreSQL aware."""
    return when.astimezone(datetime.timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def slot_events(engine: sa.Engine) -> tuple[list[tuple], list[tuple]]:
    """What monitor matches to count refilled slots: (day, when) of each call that freed a slot (its
    latest attempt ended rescheduled or cancelled), and (day, when booked) of each booking kept by
    :func:`record_bookings`. Times naive UTC."""
    c, b, latest = T.calls.c, T.bookings.c, _latest_calls()
    freeing = sa.select(c.day, c.called_at).join(latest, latest.c.id == c.id).where(c.result.in_(T.FREEING))
    with engine.connect() as connection:
        freed = [(day, _naive_utc(when)) for day, when in connection.execute(freeing)]
        booked = [(day, _naive_utc(when)) for day, when in connection.execute(sa.select(b.day, b.booked_at))]
    return freed, booked


def record_bookings(engine: sa.Engine, frame: pl.DataFrame, source_sha256: str) -> int:
    """Keep the appointments of a later export (``frame``: the loader's columns) that are booked for
    a day the store has a list for but are on no list: bookings made after the list, which may fill
    a slot a call freed. Booking times without a zone are taken as UTC, as the call times are kept.
    Idempotent; returns how many were newly kept."""
    days = frame[S.APPOINTMENT_DATE].unique().to_list()
    with engine.begin() as connection:
        listed_days = {d for (d,) in connection.execute(sa.select(T.lists.c.day).distinct().where(T.lists.c.day.in_(days)))}
        candidates = frame.filter(pl.col(S.APPOINTMENT_DATE).is_in(sorted(listed_days)))
        ids = candidates[S.APPOINTMENT_ID].to_list()
        on_lists = _existing(connection, T.list_rows.c.appointment_id, ids)
        stamp = now()
        rows = [{"appointment_id": a, "day": day, "booked_at": booked.replace(tzinfo=booked.tzinfo or datetime.timezone.utc),
                 "source_sha256": source_sha256, "recorded_at": stamp}
                for a, day, booked in candidates.select(S.APPOINTMENT_ID, S.APPOINTMENT_DATE, S.SCHEDULED_DAY).iter_rows()
                if a not in on_lists]
        return _insert_ignoring(connection, T.bookings, rows, "appointment_id")


def list_drift(engine: sa.Engine) -> list[dict]:
    """Each day's latest list's drift (day, largest group PSI, warnings), where it was computed."""
    latest = latest_lists()
    query = (sa.select(T.lists.c.day, T.lists.c.drift).join(latest, latest.c.id == T.lists.c.id)
             .where(T.lists.c.drift.is_not(None)).order_by(T.lists.c.day))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [{"day": str(day), "max_group_psi": max(d["groups"].values(), default=None), "warnings": d["warnings"]}
            for day, d in rows if d]
