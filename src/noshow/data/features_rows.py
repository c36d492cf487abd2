"""Raw features of a few appointments without polars' per-call cost (the service's requests).

A polars call costs tens of microseconds whatever the rows, and typing one appointment and giving it
its features takes some 30 of them: for a request of one appointment that fixed cost is the request.
This module gives the same result for a few records in plain Python and NumPy:

1. :func:`typed_records` types JSON records as :func:`noshow.data.loader.load_records` does, by the
   same column rules (:data:`noshow.data.rules.COLUMN_RULES`: kinds, valid ranges, choices, clips),
   but only values in the one canonical form a client sends (``"2016-04-29T18:38:08Z"``, ``"62"``
   or ``62``, no surrounding blanks, a plain PatientId). Anything else gives None, and the caller
   uses the loader, which accepts the value or reports it with its message: the loader stays the
   one definition of what is valid, this module a shortcut for values it would accept unchanged.
2. :class:`HistoryIndex` holds the history file's :data:`~noshow.data.features.HISTORY_INPUTS` as
   NumPy arrays grouped by patient (built once at the service's start), so that a request takes its
   patients' rows by position.
3. :func:`raw_rows` computes the history features with
   :func:`~noshow.data.features.history_arrays` itself, on the request's rows and its patients'
   history rows, and the appointment's own features as :func:`~noshow.data.features.raw_features`
   defines them, into one frame of the same columns and dtypes (tested equal on the real file's rows).

Only the Kaggle layout's built-in features are computed here: a model read through a schema file
(other roles, covariates) is scored by the polars path.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from noshow.data import loader, rules
from noshow.data import schema as S
from noshow.data.features import HISTORY, KAGGLE, history_arrays

# The canonical text of a time stamp: 2016-04-29T18:38:08Z (schema.DATETIME_FORMAT, zero-padded).
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_EXPONENT = re.compile(loader._EXPONENT_ID)
_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_DAY = _EPOCH.toordinal()
_INT64 = (-(1 << 63), (1 << 63) - 1)
# Columns whose presence the loader treats specially (typed, or outcome): their records go its way.
_SPECIAL = (S.LABEL, S.TRUE_PROBABILITY)


@dataclass(frozen=True)
class TypedRows:
    """A few appointments typed as the loader types them, one Python list per column.

    ``booked_at``: booking time stamps in microseconds since 1970 (UTC, as polars stores them);
    ``booked_day`` and ``day``: booking and appointment dates in days since 1970; ``booked_hour``,
    ``booked_weekday`` and ``weekday``: hour 0-23 and ISO weekday 1-7 (Monday 1).
    """

    patient_id: list[str]
    appointment_id: list[int]
    male: list[int]
    booked_at: list[int]
    booked_day: list[int]
    booked_hour: list[int]
    booked_weekday: list[int]
    day: list[int]
    weekday: list[int]
    age: list[int]
    neighbourhood: list[str]
    flags: dict[str, list[int]]  # S.FLAG_COLUMNS
    handicap: list[int]

    def __len__(self) -> int:
        return len(self.patient_id)


def _text(value) -> str | None:
    """A record's value as the text the loader reads (:func:`noshow.data.loader._as_text`), or None
    when it is missing or carries blanks the loader would strip."""
    if isinstance(value, bool) or value is None:
        return None  # JSON true/false are not a CSV's values; the loader reports them
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else None
    return text if text is not None and text == text.strip() else None


def _integer(value, low: int, high: int) -> int | None:
    text = _text(value)
    if text is None or not text.isascii():
        return None
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit():
        return None
    number = int(text)
    return number if low <= number <= high else None


def _stamp(value, low: int, high: int) -> datetime.datetime | None:
    text = _text(value)
    if text is None or not _STAMP.fullmatch(text):
        return None
    try:
        stamp = datetime.datetime(int(text[:4]), int(text[5:7]), int(text[8:10]),
                                  int(text[11:13]), int(text[14:16]), int(text[17:19]))
    except ValueError:
        return None
    return stamp if low <= stamp.year <= high else None


def _typed(rule: rules.ColumnRule, value):
    """``value`` read by ``rule`` (:data:`noshow.data.rules.COLUMN_RULES`), or None where it is
    not in its canonical form or not valid."""
    if rule.kind == "int":
        number = _integer(value, *(rule.valid or _INT64))
        return number if number is None or rule.clip is None else min(max(number, rule.clip[0]), rule.clip[1])
    if rule.kind == "datetime":
        return _stamp(value, *rule.valid)
    text = _text(value)
    if rule.kind == "choice":
        return text if text in rule.choices else None
    return None if text is None or (rule.column == S.PATIENT_ID and _EXPONENT.match(text)) else text


def typed_records(records: list[dict]) -> TypedRows | None:
    """The records typed as :func:`noshow.data.loader.load_records` types them (Kaggle layout,
    by :data:`noshow.data.rules.COLUMN_RULES`), or None where any value is not in its canonical form
    or any record lacks a column (the loader then reads them, and reports what is wrong)."""
    columns = {name: [] for name in TypedRows.__dataclass_fields__ if name != "flags"}
    flags = {c: [] for c in S.FLAG_COLUMNS}
    for record in records:
        if any(c in record for c in _SPECIAL):
            return None
        typed = {rule.name: _typed(rule, record.get(rule.column)) for rule in rules.COLUMN_RULES}
        if None in typed.values():
            return None
        booked, appointment = typed[S.SCHEDULED_DAY], typed[S.APPOINTMENT_DAY]
        columns["patient_id"].append(typed[S.PATIENT_ID])
        columns["appointment_id"].append(typed[S.APPOINTMENT_ID])
        columns["male"].append(int(typed[S.GENDER] == "M"))
        columns["booked_at"].append((booked - _EPOCH) // datetime.timedelta(microseconds=1))
        columns["booked_day"].append(booked.toordinal() - _EPOCH_DAY)
        columns["booked_hour"].append(booked.hour)
        columns["booked_weekday"].append(booked.isoweekday())
        columns["day"].append(appointment.toordinal() - _EPOCH_DAY)
        columns["weekday"].append(appointment.isoweekday())
        columns["age"].append(typed[S.AGE])
        columns["neighbourhood"].append(typed[S.NEIGHBOURHOOD])
        columns["handicap"].append(typed[S.HANDICAP])
        for c in S.FLAG_COLUMNS:
            flags[c].append(typed[c])
    return TypedRows(**columns, flags=flags)


class HistoryIndex:
    """A history file's rows grouped by patient, as NumPy arrays (read-only once built).

    ``frame``: the loaded history sorted by patient (file order within a patient); ``spans``:
    patient key -> (first row, rows) in it; the arrays, each (n,): appointment ids, appointment and
    booking days (days since 1970), booking time stamps (microseconds) and outcomes (0 where unknown).
    """

    def __init__(self, history: pl.DataFrame):
        self.frame = history.sort(S.PATIENT_KEY, maintain_order=True)
        spans = self.frame.with_row_index().group_by(S.PATIENT_KEY).agg(pl.col("index").first(), pl.len())
        self.spans = {key: (start, n) for key, start, n in spans.iter_rows()}
        frame = self.frame
        self.appointment_id = frame[S.APPOINTMENT_ID].to_numpy()
        self.day, self.booked_at, self.booked_day = (frame[c].to_numpy().view(np.int64)
                                                     for c in (S.APPOINTMENT_DATE, S.SCHEDULED_DAY, S.SCHEDULED_DATE))
        self.no_show = (frame[S.TARGET].fill_null(0).to_numpy() if S.TARGET in frame.columns
                        else np.zeros(frame.height, np.int8))

    def positions(self, keys) -> np.ndarray:
        """(m,) int64: the rows of ``keys``' patients, patient by patient (unknown keys have none)."""
        spans = [self.spans[k] for k in keys if k in self.spans]
        return np.concatenate([np.arange(start, start + n) for start, n in spans]) if spans else np.zeros(0, np.int64)

    def rows_of(self, keys) -> pl.DataFrame:
        """The history rows of the patients ``keys`` (a list of patient keys), as a frame."""
        return self.frame[self.positions(keys)]


def history_columns(rows: TypedRows, index: HistoryIndex | None) -> dict[str, np.ndarray]:
    """The :data:`~noshow.data.features.HISTORY` columns (m,) int32 of ``rows``, counting their
    patients' rows of ``index`` less those with one of ``rows``' appointment ids, as
    :func:`~noshow.data.features.raw_features` counts a history (-1: no earlier day)."""
    m = len(rows)
    codes = {key: i for i, key in enumerate(dict.fromkeys(rows.patient_id))}
    patient = np.fromiter((codes[k] for k in rows.patient_id), np.int32, count=m)
    day, booked_at, booked_day = (np.asarray(v, np.int64) for v in (rows.day, rows.booked_at, rows.booked_day))
    no_show = np.zeros(m, np.int8)  # a request's own outcomes are unknown: they count as shows
    if index is not None:
        known = [k for k in codes if k in index.spans]
        taken = index.positions(known)
        owner = np.repeat(np.asarray([codes[k] for k in known], np.int32), [index.spans[k][1] for k in known])
        # A history row that is one of the request's appointments counts once, as the request's row.
        kept = ~np.isin(index.appointment_id[taken], np.asarray(rows.appointment_id, np.int64))
        taken = taken[kept]
        if len(taken):
            patient = np.r_[owner[kept], patient]
            day, booked_at, booked_day = (np.r_[a[taken], b] for a, b in ((index.day, day), (index.booked_at, booked_at),
                                                                       (index.booked_day, booked_day)))
            no_show = np.r_[index.no_show[taken], no_show]
    columns = history_arrays(patient, day, no_show, booked_at, booked_day)
    return {name: values[len(values) - m:] for name, values in zip(HISTORY, columns)}


def raw_rows(rows: TypedRows, index: HistoryIndex | None) -> pl.DataFrame:
    """:func:`~noshow.data.features.raw_features` of ``rows`` with the history ``index`` (the
    Kaggle layout's :data:`~noshow.data.features.KAGGLE` columns, same dtypes), in one frame."""
    history = history_columns(rows, index)
    lead = np.maximum(np.asarray(rows.day, np.int64) - np.asarray(rows.booked_day, np.int64), 0)
    prior, missed = history["prior_appointments"], history["prior_no_shows"]
    rate = np.zeros(len(rows))
    np.divide(missed, prior, out=rate, where=prior > 0)
    values = {
        "lead_days": lead,
        "age": np.asarray(rows.age, np.float64),
        "booking_hour": np.asarray(rows.booked_hour, np.float64),
        **{c: history[c] for c in HISTORY if c != "days_since_previous"},
        "prior_no_show_rate": rate,
        "days_since_previous": np.maximum(history["days_since_previous"], 0),
        "same_day": (lead == 0).astype(np.int8),
        "male": np.asarray(rows.male, np.int8),
        "first_appointment": (prior == 0).astype(np.int8),
        **{c: np.asarray(v, np.int8) for c, v in rows.flags.items()},
        "weekday": [str(d) for d in rows.weekday],
        "booking_weekday": [str(d) for d in rows.booked_weekday],
        "handicap": [str(h) for h in rows.handicap],
        "neighbourhood": rows.neighbourhood,
    }
    if len(rows) > ROW_ORIENTED_ROWS:
        return pl.DataFrame({name: values[name] for name in RAW_SCHEMA}, schema=RAW_SCHEMA)
    columns = [values[name] for name in RAW_SCHEMA]
    return pl.DataFrame(list(zip(*(c.tolist() if isinstance(c, np.ndarray) else c for c in columns))),
                        schema=RAW_SCHEMA, orient="row")


# The dtypes raw_features gives the Kaggle layout's columns, in its order (history counts: Int32).
_DTYPES = {"lead_days": pl.Int64, "age": pl.Float64, "booking_hour": pl.Float64, "prior_no_show_rate": pl.Float64,
           "same_day": pl.Int8, "male": pl.Int8, "first_appointment": pl.Int8, **{c: pl.Int8 for c in S.FLAG_COLUMNS},
           **{c: pl.String for c in ("weekday", "booking_weekday", "handicap", "neighbourhood")}}
RAW_SCHEMA = {name: _DTYPES.get(name, pl.Int32) for name in KAGGLE.raw_columns}
# Up to this many rows a frame is built from Python rows (about 60 us for one) rather than from
# columns (about 300 us whatever the rows, measured): the constructor's fixed cost per column.
ROW_ORIENTED_ROWS = 100
