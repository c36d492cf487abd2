"""Leak-free features and the fitted pipeline that turns them into a float matrix.

Two stages:

1. :func:`raw_features` derives named, unscaled features from a validated appointments frame. It
   learns nothing, so it can run on any rows. The patient-history features are causal:
   - outcomes count only from strictly earlier appointment *days* (``AppointmentDay`` has no time of
     day, so same-day appointments are not "previous"): an outcome never changes the features of an
     appointment on the same day or earlier;
   - other appointments count only if they were booked before the appointment's day, or in its own
     booking session: a booking made on or after the day for a later day (such as rebooking a missed
     appointment) never changes its features.
2. :class:`FeaturePipeline` learns every statistic (means, standard deviations, category
   vocabularies) from training rows only and applies them unchanged to validation, test and new
   files. It round-trips through JSON so a model file carries it.

The feature list is defined once, here: for the Kaggle layout in :data:`NUMERIC`, :data:`BINARY`,
:data:`CATEGORICAL` and :data:`BINNED` (:data:`KAGGLE`), and for a clinic's own export by
:func:`spec_for` from its schema file: the same causal features less those whose role the export
lacks, plus the hour of the appointment when it is known, plus one feature per covariate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.schema_file import APPOINTMENT_TIME, Schema
from noshow.nn.encoded import Encoded

# Numeric features and the transform applied before standardising (log1p tames long right tails:
# lead times run to 179 days, prior-appointment counts to 80).
NUMERIC: dict[str, str] = {
    "lead_days": "log1p",
    "age": "identity",
    "booking_hour": "identity",
    "prior_appointments": "log1p",
    "prior_no_shows": "log1p",
    "prior_no_show_rate": "identity",
    "days_since_previous": "log1p",
    "days_since_first": "log1p",
    "same_day_appointments": "log1p",
    "session_appointments": "log1p",
    "booked_ahead": "log1p",
}
BINARY: tuple[str, ...] = ("same_day", "male", "first_appointment", "previous_no_show", *S.FLAG_COLUMNS)
# One-hot encoded; values seen fewer than ``min_category_count`` times in training, or never, fall
# into the trailing "other" column.
CATEGORICAL: tuple[str, ...] = ("weekday", "booking_weekday", "handicap", "neighbourhood")
OTHER = "other"
# Numeric features also given as one-hot bins (bin i holds edges[i-1] <= x < edges[i]): an MLP learns
# sharp steps (same-day vs next-day lead time, child vs adult) far faster from bins than from one
# standardised number. Edges are fixed domain knowledge, not fitted, so they cannot leak.
BINNED: dict[str, tuple[float, ...]] = {
    "lead_days": (1, 2, 3, 5, 8, 15, 22, 31, 45, 61, 91),
    "age": (1, 4, 8, 13, 18, 25, 35, 45, 55, 65, 75, 85),
    "booking_hour": (8, 9, 10, 11, 12, 14, 15, 16, 17, 18),
    "prior_no_shows": (1, 2, 3, 5),
    "prior_appointments": (1, 2, 3, 5, 8, 13),
    "days_since_previous": (1, 2, 4, 8, 15, 29),
}

# Reason groups as named for a clinic, each a tuple of raw features (every feature in exactly one).
GROUPS: dict[str, tuple[str, ...]] = {
    "lead_time": ("lead_days", "same_day"),
    "prior_no_shows": ("prior_no_shows", "prior_no_show_rate"),
    "latest_outcome": ("previous_no_show",),
    "visit_history": ("prior_appointments", "first_appointment", "days_since_previous", "days_since_first"),
    "bookings_ahead": ("booked_ahead",),
    "other_bookings": ("same_day_appointments", "session_appointments"),
    "sms": (S.SMS_RECEIVED,),
    "age": ("age",),
    "sex": ("male",),
    "neighbourhood": ("neighbourhood",),
    "weekday": ("weekday",),
    "booking_time": ("booking_hour", "booking_weekday"),
    "scholarship": ("Scholarship",),
    "conditions": ("Hipertension", "Diabetes", "Alcoholism", "handicap"),
}
# A clinic's export: the hour of the appointment, when the schema gives its time (09:00 to 17:00 in
# whole hours, and the lunch break, are the steps a clinic's day has).
APPOINTMENT_HOUR = "appointment_hour"
APPOINTMENT_HOUR_EDGES = (8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# Which built-in features need which optional role (the rest come from the required roles).
NEEDS_ROLE = {"age": ("age", "birth_date"), "male": ("gender",), S.SMS_RECEIVED: ("reminder_sent",),
              APPOINTMENT_HOUR: ("appointment_time",)}
COVARIATE_KINDS = ("flag", "categorical", "numeric")


@dataclass(frozen=True)
class FeatureSpec:
    """The raw features a model uses, in the pipeline's column order, and their reason groups.

    ``numeric``: name -> transform before standardising; ``binary``: 0/1 features; ``categorical``:
    one-hot encoded; ``binned``: numeric features also given as one-hot bins (name -> edges);
    ``groups``: reason group -> its features; ``covariates``: feature -> kind (``flag``,
    ``categorical``, ``numeric``) for a schema's covariates, read from the frame column of the
    same name; ``absent``: built-in features left out because the export lacks their role.
    """

    numeric: dict
    binary: tuple
    categorical: tuple
    binned: dict
    groups: dict
    covariates: dict = field(default_factory=dict)
    absent: tuple = ()
    name: str = "kaggle"

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """Every raw feature, in :func:`raw_features`' column order."""
        return (*self.numeric, *self.binary, *self.categorical)

    def to_dict(self) -> dict:
        """Plain JSON. Every mapping is a list of [key, value] pairs: its order is the columns'
        order, and the model file's JSON is written with sorted keys."""
        return {"name": self.name, "numeric": [[k, v] for k, v in self.numeric.items()], "binary": list(self.binary),
                "categorical": list(self.categorical), "binned": [[k, list(v)] for k, v in self.binned.items()],
                "groups": [[k, list(v)] for k, v in self.groups.items()],
                "covariates": [[k, v] for k, v in self.covariates.items()], "absent": list(self.absent)}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        spec = cls(numeric={k: v for k, v in data["numeric"]}, binary=tuple(data["binary"]),
                   categorical=tuple(data["categorical"]), binned={k: tuple(v) for k, v in data["binned"]},
                   groups={k: tuple(v) for k, v in data["groups"]}, covariates={k: v for k, v in data["covariates"]},
                   absent=tuple(data.get("absent", ())), name=str(data.get("name", "custom")))
        grouped = sorted(c for columns in spec.groups.values() for c in columns)
        if grouped != sorted(spec.raw_columns) or set(spec.binned) - set(spec.numeric):
            raise ValueError("feature spec's reason groups or bins do not match its features")
        if any(kind not in COVARIATE_KINDS for kind in spec.covariates.values()):
            raise ValueError("feature spec has a covariate of an unknown kind")
        return spec


KAGGLE = FeatureSpec(NUMERIC, BINARY, CATEGORICAL, BINNED, GROUPS)  # the built-in preset


def spec_for(schema: Schema, booked_has_time: bool = True) -> FeatureSpec:
    """The features of an export read through ``schema``: the Kaggle layout's causal features, less
    those whose role is absent (and ``booking_hour`` when ``booked_has_time`` is False: an export
    that records the booking's day only), plus :data:`APPOINTMENT_HOUR` and one feature per
    covariate, each its own reason group. In the Kaggle layout's column order where the two share a
    feature, so the Kaggle file read through a schema naming its columns gives the same matrix."""
    def present(feature: str) -> bool:
        if feature == "booking_hour":
            return booked_has_time
        return any(schema.has(role) for role in NEEDS_ROLE.get(feature, (feature,))) if feature in NEEDS_ROLE else True

    history_numeric = [n for n in NUMERIC if n not in ("lead_days", "age", "booking_hour")]
    numeric = {n: NUMERIC[n] for n in ("lead_days", "age", "booking_hour") if present(n)}
    numeric.update({n: NUMERIC[n] for n in history_numeric})
    if present(APPOINTMENT_HOUR):
        numeric[APPOINTMENT_HOUR] = "identity"
    numeric.update({c: "identity" for c in schema.numeric})
    binary = ("same_day", *(["male"] if present("male") else []), "first_appointment", "previous_no_show",
              *schema.flags, *([S.SMS_RECEIVED] if present(S.SMS_RECEIVED) else []))
    categorical = ("weekday", "booking_weekday", *schema.categorical)
    binned = {n: e for n, e in BINNED.items() if n in numeric}
    if APPOINTMENT_HOUR in numeric:
        binned[APPOINTMENT_HOUR] = APPOINTMENT_HOUR_EDGES
    builtin = (*numeric, *binary, *categorical)
    groups = {}
    for group, columns in GROUPS.items():
        kept = tuple(c for c in columns if c in builtin and c not in schema.covariates)
        if kept and group not in ("neighbourhood", "scholarship", "conditions"):
            groups[group] = kept
    if APPOINTMENT_HOUR in numeric:
        groups["appointment_time"] = (APPOINTMENT_HOUR,)
    kinds = {**{c: "flag" for c in schema.flags}, **{c: "categorical" for c in schema.categorical},
             **{c: "numeric" for c in schema.numeric}}
    for column in schema.covariates:
        groups[column if column not in groups else f"{column} (column)"] = (column,)
    absent = tuple(n for n in (*NUMERIC, *BINARY, APPOINTMENT_HOUR)
                   if n in (*NEEDS_ROLE, "booking_hour") and not present(n))
    return FeatureSpec(numeric, binary, categorical, binned, groups, kinds, absent, schema.name)


def booked_has_time(frame: pl.DataFrame, schema: Schema) -> bool:
    """Whether an export's booking time stamps carry a time of day (its format has hours, or,
    read as ISO 8601, some booking is not at midnight): else ``booking_hour`` means nothing."""
    fmt = schema.formats.get("booked_at")
    if fmt is not None:
        return any(d in fmt for d in ("%H", "%I", "%T", "%R", "%X", "%c"))
    stamps = frame[S.SCHEDULED_DAY]
    return bool((stamps != stamps.dt.truncate("1d")).any())


def spec_of(frame: pl.DataFrame, schema: Schema | None) -> FeatureSpec:
    """The features of a loaded frame: :data:`KAGGLE` for the Kaggle layout (``schema`` None),
    else :func:`spec_for` its schema."""
    return KAGGLE if schema is None else spec_for(schema, booked_has_time(frame, schema))


HISTORY = ("prior_appointments", "prior_no_shows", "previous_no_show", "days_since_previous", "days_since_first",
           "same_day_appointments", "session_appointments", "booked_ahead")
# What history_features reads: who, which day, when booked (time stamp and date), and the outcome.
HISTORY_INPUTS = (S.PATIENT_KEY, S.APPOINTMENT_DATE, S.SCHEDULED_DAY, S.SCHEDULED_DATE, S.TARGET)


def history_features(frame: pl.DataFrame) -> pl.DataFrame:
    """Per-appointment patient history, known before the appointment's day.

    Parameters
    ----------
    frame : validated appointments with the :data:`HISTORY_INPUTS` columns; ``target`` may be null
        or absent where the outcome is unknown (it then counts as a show).

    Returns
    -------
    Frame of ``frame.height`` rows in the same order with the :data:`HISTORY` columns (int32):

    - ``prior_appointments``, ``prior_no_shows``: the patient's appointments and no-shows on strictly
      earlier days; ``previous_no_show``: 1 if one was missed on the latest such day;
    - ``days_since_previous`` (null for a first appointment), ``days_since_first`` (0 for one): days
      since the latest and the earliest such day;
    - ``same_day_appointments``: the patient's appointments that day, this one included;
    - ``session_appointments``: appointments booked in this one's session (same ``ScheduledDay``
      time stamp), this one included;
    - ``booked_ahead``: the patient's appointments on later days booked before this one's day.
    """
    names = frame.columns
    key = frame[S.PATIENT_KEY]
    # Exact integer codes for text keys; integer keys (hashed, from the out-of-core path) as they are.
    codes = key.cast(pl.Categorical).to_physical() if key.dtype == pl.String else key
    outcome = frame[S.TARGET].fill_null(0).to_numpy() if S.TARGET in names else np.zeros(frame.height, np.int8)
    # Day numbers and microsecond time stamps (datetime64 viewed as integers: no polars call).
    day, booked_at, booked_day = (frame[c].to_numpy().view(np.int64)
                                  for c in (S.APPOINTMENT_DATE, S.SCHEDULED_DAY, S.SCHEDULED_DATE))
    return history_frame(history_arrays(codes.to_numpy(), day, outcome, booked_at, booked_day))


def history_frame(columns) -> pl.DataFrame:
    """The :data:`HISTORY` frame of :func:`history_arrays`' eight (n,) int32 columns (or an
    (8, n) array): ``days_since_previous`` null where it is -1 (no earlier day)."""
    return pl.DataFrame(dict(zip(HISTORY, columns))).with_columns(pl.col("days_since_previous").replace(-1, None))


def history_arrays(patient: np.ndarray, day: np.ndarray, no_show: np.ndarray, booked_at: np.ndarray,
                   booked_day: np.ndarray) -> tuple[np.ndarray, ...]:
    """The :data:`HISTORY` columns from five (n,) arrays: patient codes, appointment day numbers,
    outcomes in {0, 1}, booking time stamps and booking day numbers.

    Sorts rows by (patient, day), forms one group per patient-day, accumulates counts over each
    patient's earlier groups, and scatters the group values back to the rows; booking sessions and
    bookings ahead take one more sort each. O(n log n) time; int32 wherever a value allows it, and
    temporaries freed as soon as they are used (about 135 bytes per row at the peak): the out-of-core
    path runs it on one bucket of patients at a time (:class:`noshow.data.stream.PatientHistory`).
    Only a patient's own rows enter its values, so any subset of whole patients gives those
    patients' rows exactly their values over the whole file. Returns int32 arrays in
    :data:`HISTORY` order, with -1 for ``days_since_previous`` where there is no earlier day.
    """
    n = len(patient)
    if n == 0:
        return tuple(np.zeros(0, np.int32) for _ in HISTORY)
    order = np.lexsort((day, patient))
    p, d = patient[order], day[order]
    new_patient = np.r_[True, p[1:] != p[:-1]]
    del p
    new_group = new_patient | np.r_[True, d[1:] != d[:-1]]
    code = np.cumsum(new_patient, dtype=np.int32) - 1  # dense patient number of each sorted row
    group = np.cumsum(new_group, dtype=np.int32) - 1
    starts = np.flatnonzero(new_group)
    first_of_patient = new_patient[starts]
    group_day = d[starts]
    group_code = code[starts]
    del new_patient, new_group, starts
    # 5 rows of the Kaggle file are dated before they were booked: treat them as booked that day.
    booked = np.minimum(booked_day[order], d)
    count = np.bincount(group).astype(np.int32)
    no_shows = np.bincount(group, weights=no_show[order]).astype(np.int32)
    booked_earlier = np.bincount(group, weights=booked < d).astype(np.int32)
    del d

    def earlier(values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` over the same patient's earlier groups."""
        before = np.cumsum(values, dtype=np.int64) - values
        return (before - np.maximum.accumulate(np.where(first_of_patient, before, 0))).astype(np.int32)

    def to_rows(values: np.ndarray) -> np.ndarray:
        rows = np.empty(n, np.int32)
        rows[order] = values[group]  # noqa: F821 (both are deleted below only after the last call, to free them)
        return rows

    prior = earlier(count)
    # Booked before the day: every earlier-day appointment, this day's advance bookings, and the rest
    # are the later-day appointments already booked.
    ahead = _bookings_before(code, booked, group_code, group_day) - prior - booked_earlier
    del booked, booked_earlier, group_code
    patient_rows = np.empty(n, np.int32)
    patient_rows[order] = code
    del code
    first_group = np.maximum.accumulate(np.where(first_of_patient, np.arange(len(group_day), dtype=np.int32), 0))
    out = {
        "booked_ahead": to_rows(ahead),
        "prior_appointments": to_rows(prior),
        "prior_no_shows": to_rows(earlier(no_shows)),
        "previous_no_show": to_rows((~first_of_patient & (np.r_[0, no_shows[:-1]] > 0)).astype(np.int32)),
        "days_since_previous": to_rows(np.where(first_of_patient, -1, group_day - np.r_[group_day[0], group_day[:-1]])),
        "days_since_first": to_rows(group_day - group_day[first_group]),
        "same_day_appointments": to_rows(count),
    }
    del ahead, prior, no_shows, count, first_group, group, order
    out["session_appointments"] = _session_sizes(patient_rows, booked_at)
    return tuple(out[name] for name in HISTORY)


def _session_sizes(patient: np.ndarray, booked_at: np.ndarray) -> np.ndarray:
    """(n,) int32: number of rows with the same patient and booking time stamp as each row."""
    order = np.lexsort((booked_at, patient))
    sorted_values = patient[order]
    new = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    sorted_values = booked_at[order]
    new[1:] |= sorted_values[1:] != sorted_values[:-1]
    del sorted_values
    session = np.cumsum(new, dtype=np.int32) - 1
    del new
    sizes = np.empty(len(patient), np.int32)
    sizes[order] = np.bincount(session).astype(np.int32)[session]
    return sizes


def _bookings_before(patient: np.ndarray, booked_day: np.ndarray, query_patient: np.ndarray,
                     query_day: np.ndarray) -> np.ndarray:
    """(m,) for each query (patient, day): how many of that patient's rows were booked before day.

    ``patient`` and ``query_patient`` are dense non-negative int32 numbers. Each (patient, day)
    pair is packed into one int64, patient in the high 32 bits, so one sort of the bookings and two
    binary searches per query answer it.
    """
    offset = min(int(booked_day.min()), int(query_day.min()))

    def packed(who: np.ndarray, when: np.ndarray | int) -> np.ndarray:
        return (who.astype(np.int64) << 32) | (np.asarray(when, np.int64) - offset)

    bookings = packed(patient, booked_day)
    bookings.sort()
    # Bookings before (patient, day), less those of lower-numbered patients.
    count = np.searchsorted(bookings, packed(query_patient, query_day))
    count -= np.searchsorted(bookings, packed(query_patient, offset))
    return count.astype(np.int32)


def raw_features(frame: pl.DataFrame, history: pl.DataFrame | None = None, past: pl.DataFrame | None = None,
                 spec: FeatureSpec | None = None) -> pl.DataFrame:
    """Named, unscaled features of every appointment in ``frame``.

    Parameters
    ----------
    frame : validated appointments (see :mod:`noshow.data.loader`).
    history : optional other appointments of the same patients: earlier ones with outcomes, and
        later ones already booked. They count towards the history features of ``frame``'s rows and
        are not returned.
    past : optional :func:`history_features` of ``frame``'s rows, computed beforehand (files
        larger than memory compute them over the whole file, then features chunk by chunk).

    Returns
    -------
    Frame of ``frame.height`` rows with ``spec.raw_columns`` (default: the Kaggle layout's,
    :data:`NUMERIC`, :data:`BINARY` and :data:`CATEGORICAL`). Units: days for ``lead_days`` and
    ``days_since_previous``, hours (0-23, UTC in the Kaggle file, the clinic's wall clock in an
    export) for ``booking_hour`` and ``appointment_hour``, years for ``age``.
    """
    spec = KAGGLE if spec is None else spec
    if history is not None and history.height and S.APPOINTMENT_ID in history.columns and S.APPOINTMENT_ID in frame.columns:
        # A clinic passes its whole export as history, scored rows included: an appointment in both
        # is one appointment, counted once (as a scored row), never as its own history.
        history = history.filter(~pl.col(S.APPOINTMENT_ID).is_in(frame[S.APPOINTMENT_ID].implode()))
    if past is None and history is not None and history.height:
        # Keep the history's outcomes even when the scored file has none (they become null there).
        needed = [c for c in HISTORY_INPUTS if c != S.TARGET]
        outcome = [S.TARGET] if S.TARGET in history.columns else []
        both = pl.concat([history.select(*needed, *outcome),
                          frame.select(*needed, *[c for c in outcome if c in frame.columns])], how="diagonal_relaxed")
        past = history_features(both).slice(history.height)
    elif past is None:
        past = history_features(frame)
    lead = (pl.col(S.APPOINTMENT_DATE) - pl.col(S.SCHEDULED_DATE)).dt.total_days().clip(lower_bound=0)
    prior = pl.col("prior_appointments")
    # One pass over the appointment's own columns and its history's, side by side (no copy).
    both = pl.concat([frame, past], how="horizontal")
    expressions = {
        "lead_days": lead,
        "age": pl.col(S.AGE).cast(pl.Float64),
        "booking_hour": pl.col(S.SCHEDULED_DAY).dt.hour().cast(pl.Float64),
        APPOINTMENT_HOUR: pl.col(APPOINTMENT_TIME).cast(pl.Float64),
        "same_day": (lead == 0).cast(pl.Int8),
        "male": (pl.col(S.GENDER) == "M").cast(pl.Int8),
        **{c: pl.col(c).cast(pl.Int8) for c in S.FLAG_COLUMNS},
        "weekday": pl.col(S.APPOINTMENT_DATE).dt.weekday().cast(pl.String),
        "booking_weekday": pl.col(S.SCHEDULED_DAY).dt.weekday().cast(pl.String),
        "handicap": pl.col(S.HANDICAP).cast(pl.String),
        "neighbourhood": pl.col(S.NEIGHBOURHOOD),
        **{c: pl.col(c) for c in HISTORY if c != "days_since_previous"},
        "prior_no_show_rate": pl.when(prior > 0).then(pl.col("prior_no_shows") / prior).otherwise(0.0),
        "days_since_previous": pl.col("days_since_previous").fill_null(0),
        "first_appointment": (prior == 0).cast(pl.Int8),
    }
    for column, kind in spec.covariates.items():  # a schema's covariates, under their own names
        expressions[column] = pl.col(column).cast(_COVARIATE_DTYPES[kind])
    return both.select(expressions[name].alias(name) for name in spec.raw_columns)


_COVARIATE_DTYPES = {"flag": pl.Int8, "categorical": pl.String, "numeric": pl.Float64}


Moments = tuple[int, float, float]  # (n, mean, sum of squared deviations) of one numeric feature


def _combine_moments(a: Moments, b: Moments) -> Moments:
    """The moments of two sets of values together (Chan, Golub & LeVeque 1979)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    if n_b == 0:
        return a
    if n_a == 0:
        return b
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n


def _merge_moments(moments: Moments, values: np.ndarray) -> Moments:
    """Combine running moments with a new chunk of values."""
    n_b = len(values)
    if n_b == 0:
        return moments
    mean_b = values.sum() / n_b
    deviation = values - mean_b
    return _combine_moments(moments, (n_b, mean_b, (deviation * deviation).sum()))


# Speed trick: below this many rows a Python dict lookup beats polars' replace_strict, whose fixed
# cost (about 0.5 ms a call) dominates scoring one appointment; above it polars is faster (measured).
DICT_LOOKUP_ROWS = 2_000


def category_codes(values: pl.Series, vocabulary: list[str]) -> np.ndarray:
    """(n,) int32: each value's position in ``vocabulary``, ``len(vocabulary)`` (``other``) for a
    value not in it."""
    other = len(vocabulary)
    index = {v: i for i, v in enumerate(vocabulary)}
    if len(values) <= DICT_LOOKUP_ROWS:
        return np.fromiter((index.get(v, other) for v in values.to_list()), np.int32, count=len(values))
    return values.replace_strict(index, default=other, return_dtype=pl.Int32).to_numpy()


def _transform(values: np.ndarray, how: str) -> np.ndarray:
    return np.log1p(np.maximum(values, 0.0)) if how == "log1p" else values


@dataclass
class FeaturePipeline:
    """Standardises numeric features and one-hot encodes categories, fitted on training rows only.

    Output columns, in order: :data:`NUMERIC` (transformed, then standardised with training mean
    and std), :data:`BINARY` (0/1 as is), each :data:`CATEGORICAL` feature's vocabulary followed by
    its ``other`` column, then the one-hot bins of :data:`BINNED`.
    """

    min_category_count: int = 20
    spec: FeatureSpec = KAGGLE
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_fitted(self) -> bool:
        return bool(self.vocabularies)

    def fit(self, raw: pl.DataFrame) -> "FeaturePipeline":
        """Learn means, stds and vocabularies from ``raw`` (training rows only)."""
        return self.fit_chunks([raw])

    def fit_chunks(self, chunks) -> "FeaturePipeline":
        """Learn from training rows given in pieces (files larger than memory).

        Means and variances are merged across chunks with Chan et al.'s pairwise formula; for one
        chunk the result is bit-identical to ``numpy.mean`` and ``numpy.std``.
        """
        return self.fit_statistics(self.statistics(chunks, self.spec))

    @staticmethod
    def statistics(chunks, spec: FeatureSpec = KAGGLE) -> dict:
        """What fitting needs of the training rows given in pieces, as plain JSON-able values:
        ``{"moments": {numeric: [n, mean, M2]}, "counts": {categorical: {value: rows}}}``.
        Statistics of disjoint row sets combine with :meth:`merge_statistics`."""
        moments = {name: (0, 0.0, 0.0) for name in spec.numeric}
        counts: dict[str, dict[str, int]] = {name: {} for name in spec.categorical}
        for raw in chunks:
            for name, how in spec.numeric.items():
                moments[name] = _merge_moments(moments[name], _transform(raw[name].to_numpy().astype(np.float64), how))
            for name in spec.categorical:
                for value, count in raw[name].value_counts().iter_rows():
                    counts[name][value] = counts[name].get(value, 0) + count
        return {"moments": {k: [int(n), float(m), float(m2)] for k, (n, m, m2) in moments.items()}, "counts": counts}

    @staticmethod
    def merge_statistics(parts: list[dict]) -> dict:
        """The :meth:`statistics` of the union of disjoint row sets, from each set's, in order
        (data-parallel training: each process's training rows)."""
        moments = {name: (0, 0.0, 0.0) for name in parts[0]["moments"]}
        counts: dict[str, dict[str, int]] = {name: {} for name in parts[0]["counts"]}
        for part in parts:
            for name in moments:
                moments[name] = _combine_moments(moments[name], tuple(part["moments"][name]))
            for name in counts:
                for value, count in part["counts"][name].items():
                    counts[name][value] = counts[name].get(value, 0) + count
        return {"moments": {k: list(v) for k, v in moments.items()}, "counts": counts}

    def fit_statistics(self, statistics: dict) -> "FeaturePipeline":
        """Learn means, stds and vocabularies from :meth:`statistics` of the training rows."""
        for name, (n, mean, m2) in statistics["moments"].items():
            self.means[name] = float(mean)
            std = float(np.sqrt(m2 / n)) if n else 0.0
            # A constant column leaves rounding noise (~1e-16) in m2: scale it by 1, not by the noise.
            self.stds[name] = std if std > 1e-9 * max(1.0, abs(mean)) else 1.0
        for name in self.spec.categorical:
            self.vocabularies[name] = sorted(v for v, c in statistics["counts"][name].items()
                                             if c >= self.min_category_count and v != OTHER)
        return self

    @property
    def feature_names(self) -> list[str]:
        names = [*self.spec.numeric, *self.spec.binary]
        for name in self.spec.categorical:
            names += [f"{name}={v}" for v in self.vocabularies[name]] + [f"{name}={OTHER}"]
        for name, edges in self.spec.binned.items():
            names += [f"{name}<{edges[0]:g}"] + [f"{name}>={e:g}" for e in edges]
        return names

    def encode(self, raw: pl.DataFrame, dtype=np.float32) -> Encoded:
        """Compact features of ``raw``: the dense columns in ``dtype``, one-hot groups as codes."""
        if not self.is_fitted:
            raise RuntimeError("FeaturePipeline.encode called before fit")
        spec = self.spec
        dense = np.empty((raw.height, len(spec.numeric) + len(spec.binary)), dtype=dtype)
        for j, (name, how) in enumerate(spec.numeric.items()):
            values = _transform(raw[name].to_numpy().astype(np.float64), how)
            dense[:, j] = (values - self.means[name]) / self.stds[name]
        dense[:, len(spec.numeric):] = raw.select(spec.binary).to_numpy()
        hot, offset = [], dense.shape[1]
        for name in spec.categorical:
            hot.append(offset + category_codes(raw[name], self.vocabularies[name]))
            offset += len(self.vocabularies[name]) + 1
        for name, edges in spec.binned.items():
            hot.append(offset + np.searchsorted(np.asarray(edges, dtype=np.float64), raw[name].to_numpy(), side="right"))
            offset += len(edges) + 1
        return Encoded(dense, np.column_stack(hot).astype(np.int16), offset)

    def transform(self, raw: pl.DataFrame, dtype=np.float32) -> np.ndarray:
        """Feature matrix of shape (n_rows, n_features) in ``dtype``."""
        return self.encode(raw, dtype).to_array(dtype)

    def to_dict(self) -> dict:
        """Plain JSON; a schema's feature spec under ``spec`` (the Kaggle preset's is implied, so
        its model files stay as they were)."""
        spec = self.spec
        return {
            "min_category_count": self.min_category_count,
            "numeric": dict(spec.numeric),
            "binary": list(spec.binary),
            "binned": {k: list(v) for k, v in spec.binned.items()},
            "means": self.means,
            "stds": self.stds,
            "vocabularies": self.vocabularies,
            **({} if spec == KAGGLE else {"spec": spec.to_dict()}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FeaturePipeline":
        """Rebuild a fitted pipeline; raises ValueError if it was saved with another feature list."""
        spec = FeatureSpec.from_dict(data["spec"]) if "spec" in data else KAGGLE
        binned = {k: list(v) for k, v in spec.binned.items()}
        if data.get("numeric") != dict(spec.numeric) or data.get("binary") != list(spec.binary) or data.get("binned") != binned:
            raise ValueError("feature pipeline was saved with a different feature list")
        if set(data.get("vocabularies", {})) != set(spec.categorical):
            raise ValueError("feature pipeline has different categorical features")
        return cls(
            spec=spec,
            min_category_count=int(data["min_category_count"]),
            means={k: float(v) for k, v in data["means"].items()},
            stds={k: float(v) for k, v in data["stds"].items()},
            vocabularies={k: [str(x) for x in v] for k, v in data["vocabularies"].items()},
        )
