"""Features: causal patient history, dates done right, statistics learned on training rows only."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from noshow.data import features as F
from noshow.data import schema as S


def _frame(rows: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    """Minimal frame of (patient, scheduled datetime, appointment date, target)."""
    return pl.DataFrame(
        {
            S.PATIENT_KEY: [r[0] for r in rows],
            S.SCHEDULED_DAY: [dt.datetime.fromisoformat(r[1]) for r in rows],
            S.APPOINTMENT_DATE: [dt.date.fromisoformat(r[2]) for r in rows],
            S.TARGET: [r[3] for r in rows],
        }
    ).with_columns(pl.col(S.SCHEDULED_DAY).dt.date().alias(S.SCHEDULED_DATE))


def _unlabelled(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """Appointments to score: (patient, scheduled datetime, appointment date), no outcome, the
    other columns constant."""
    extra = {S.AGE: 30, S.GENDER: "F", S.HANDICAP: 0, S.NEIGHBOURHOOD: "X", **{c: 0 for c in S.FLAG_COLUMNS}}
    frame = _frame([(*r, 0) for r in rows]).drop(S.TARGET)
    return frame.with_columns(*[pl.lit(v).alias(k) for k, v in extra.items()])


def test_history_counts_only_strictly_earlier_days():
    frame = _frame([
        ("a", "2016-05-01 08:00:00", "2016-05-02", 1),
        ("a", "2016-05-01 09:00:00", "2016-05-02", 1),
        ("a", "2016-05-03 08:00:00", "2016-05-05", 0),
        ("b", "2016-05-01 08:00:00", "2016-05-05", 1),
    ])
    history = F.history_features(frame)
    assert history["prior_appointments"].to_list() == [0, 0, 2, 0]
    assert history["prior_no_shows"].to_list() == [0, 0, 2, 0]
    assert history["days_since_previous"].to_list() == [None, None, 3, None]
    assert history["same_day_appointments"].to_list() == [2, 2, 1, 1]


def test_history_knows_the_latest_outcome_and_the_first_day():
    frame = _frame([
        ("a", "2016-05-01 08:00:00", "2016-05-02", 1),
        ("a", "2016-05-03 08:00:00", "2016-05-05", 0),
        ("a", "2016-05-06 08:00:00", "2016-05-09", 0),
    ])
    history = F.history_features(frame)
    assert history["previous_no_show"].to_list() == [0, 1, 0]
    assert history["days_since_first"].to_list() == [0, 3, 7]


def test_session_counts_appointments_booked_at_the_same_moment():
    frame = _frame([
        ("a", "2016-05-01 08:00:00", "2016-05-02", 0),
        ("a", "2016-05-01 08:00:00", "2016-05-09", 0),
        ("a", "2016-05-01 08:05:00", "2016-05-10", 0),
        ("b", "2016-05-01 08:00:00", "2016-05-02", 0),
    ])
    assert F.history_features(frame)["session_appointments"].to_list() == [2, 2, 1, 1]


def test_booked_ahead_counts_later_appointments_booked_before_the_day():
    frame = _frame([
        ("a", "2016-05-01 08:00:00", "2016-05-05", 0),  # ahead of it: the 05-09 and 05-12 bookings
        ("a", "2016-05-02 08:00:00", "2016-05-09", 0),
        ("a", "2016-05-04 08:00:00", "2016-05-12", 0),
        ("a", "2016-05-05 09:00:00", "2016-05-20", 0),  # booked on 05-05: not known before it
        ("a", "2016-05-05 10:00:00", "2016-05-05", 0),  # same day, booked that day
        ("b", "2016-05-01 08:00:00", "2016-05-20", 0),
    ])
    assert F.history_features(frame)["booked_ahead"].to_list() == [2, 2, 1, 0, 2, 0]


def test_history_ignores_unknown_outcomes():
    frame = _frame([("a", "2016-05-01 08:00:00", "2016-05-02", 1), ("a", "2016-05-03 08:00:00", "2016-05-04", 0)])
    unknown = frame.with_columns(pl.lit(None, dtype=pl.Int8).alias(S.TARGET))
    assert F.history_features(unknown)["prior_no_shows"].to_list() == [0, 0]


def test_changing_an_outcome_changes_the_features_of_exactly_that_patients_later_days(small_data):
    frame = small_data.frame
    base = F.raw_features(frame)
    dates = frame[S.APPOINTMENT_DATE].to_numpy()
    patients = frame[S.PATIENT_KEY].to_numpy()
    repeat = np.flatnonzero(pl.Series(patients).is_duplicated().to_numpy())
    rng = np.random.default_rng(0)
    for row in rng.choice(repeat, size=40, replace=False):
        flipped = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == row).then(1 - pl.col(S.TARGET)).otherwise(pl.col(S.TARGET)).alias(S.TARGET)
        )
        after = F.raw_features(flipped)
        differs = np.flatnonzero(~np.all(base.to_numpy() == after.to_numpy(), axis=1))
        # Never the same day or earlier; always every later day (its count of earlier no-shows moves by one).
        later_days = np.flatnonzero((patients == patients[row]) & (dates > dates[row]))
        np.testing.assert_array_equal(differs, later_days)


def test_bookings_made_on_or_after_the_day_never_change_its_features(small_data):
    # Rebooking a missed appointment is such a booking: if it counted, the features would know the outcome.
    frame = small_data.frame.with_row_index("row")
    base = F.raw_features(frame).to_numpy()
    rng = np.random.default_rng(1)
    dropped_any = False
    for row in rng.choice(frame.height, size=40, replace=False):
        day = frame[S.APPOINTMENT_DATE][int(row)]
        later = (pl.col(S.APPOINTMENT_DATE) > day) & (pl.col(S.SCHEDULED_DATE) >= day)
        kept = frame.filter(~later | (pl.col("row") == row))
        dropped_any |= kept.height < frame.height
        position = kept["row"].to_list().index(row)
        assert np.array_equal(F.raw_features(kept.drop("row")).to_numpy()[position], base[row])
    assert dropped_any


def test_a_constant_numeric_feature_is_scaled_by_one(small_data):
    raw = F.raw_features(small_data.frame).with_columns(pl.lit(0.1).alias("age"))
    pipeline = F.FeaturePipeline().fit(raw)
    assert pipeline.stds["age"] == 1.0
    assert np.allclose(pipeline.transform(raw)[:, list(F.NUMERIC).index("age")], 0, atol=1e-6)


def test_lead_days_are_counted_on_dates_and_same_day_is_zero():
    frame = _frame([
        ("a", "2016-05-02 15:30:00", "2016-05-02", 0),
        ("b", "2016-05-01 23:59:00", "2016-05-02", 0),
        ("c", "2016-05-03 10:00:00", "2016-05-02", 0),
    ]).with_columns(
        pl.lit(30, dtype=pl.Int16).alias(S.AGE), pl.lit("F").alias(S.GENDER), pl.lit(0).alias(S.HANDICAP),
        pl.lit("X").alias(S.NEIGHBOURHOOD), *[pl.lit(0, dtype=pl.Int8).alias(c) for c in S.FLAG_COLUMNS],
    )
    raw = F.raw_features(frame)
    assert raw["lead_days"].to_list() == [0, 1, 0]
    assert raw["same_day"].to_list() == [1, 0, 1]


def test_pipeline_learns_statistics_from_training_rows_only(small_data):
    raw = F.raw_features(small_data.frame)
    train = raw[:1000]
    pipeline = F.FeaturePipeline().fit(train)
    age = train["age"].to_numpy()
    assert pipeline.means["age"] == pytest.approx(age.mean())
    assert pipeline.stds["age"] == pytest.approx(age.std())
    X = pipeline.transform(train)
    assert np.allclose(X[:, :len(F.NUMERIC)].mean(axis=0), 0, atol=1e-5)


def test_unseen_neighbourhood_goes_to_other(small_data):
    raw = F.raw_features(small_data.frame)
    pipeline = F.FeaturePipeline().fit(raw)
    new = raw[:1].with_columns(pl.lit("NEVER SEEN").alias("neighbourhood"))
    X = pipeline.transform(new)
    names = pipeline.feature_names
    assert X[0, names.index("neighbourhood=other")] == 1.0
    assert sum(X[0, i] for i, n in enumerate(names) if n.startswith("neighbourhood=")) == 1.0


def test_pipeline_round_trips_through_json(small_data):
    raw = F.raw_features(small_data.frame)
    pipeline = F.FeaturePipeline().fit(raw)
    again = F.FeaturePipeline.from_dict(json.loads(json.dumps(pipeline.to_dict())))
    assert np.array_equal(again.transform(raw), pipeline.transform(raw))


def test_features_are_float32_by_default_and_float64_on_request(small_data):
    raw = F.raw_features(small_data.frame)
    pipeline = F.FeaturePipeline().fit(raw)
    assert pipeline.transform(raw).dtype == np.float32
    assert pipeline.transform(raw, dtype=np.float64).dtype == np.float64


def test_history_file_supplies_prior_no_shows_to_unlabelled_appointments():
    past = _frame([
        ("a", "2016-05-01 08:00:00", "2016-05-02", 1),
        ("a", "2016-05-03 08:00:00", "2016-05-04", 1),
        ("b", "2016-05-01 08:00:00", "2016-05-02", 0),
    ])
    tomorrow = _unlabelled([("a", "2016-05-05 08:00:00", "2016-05-09"), ("b", "2016-05-05 08:00:00", "2016-05-09"),
                            ("c", "2016-05-05 08:00:00", "2016-05-09")])
    raw = F.raw_features(tomorrow, history=past)
    assert raw.height == 3
    assert raw["prior_no_shows"].to_list() == [2, 0, 0]
    assert raw["prior_appointments"].to_list() == [2, 1, 0]
    assert raw["days_since_previous"].to_list() == [5, 7, 0]


def test_history_file_supplies_appointments_already_booked_ahead():
    booked = _frame([("a", "2016-05-03 08:00:00", "2016-05-20", 0), ("a", "2016-05-09 08:00:00", "2016-05-23", 0)])
    raw = F.raw_features(_unlabelled([("a", "2016-05-05 08:00:00", "2016-05-09")]), history=booked.drop(S.TARGET))
    assert raw["booked_ahead"].to_list() == [1]  # the 05-23 one was booked on the day itself


def test_category_codes_are_the_same_below_and_above_the_dict_lookup_size():
    rng = np.random.default_rng(0)
    vocabulary = ["ANDORINHAS", "BELA VISTA", "CENTRO", "ÉDEN"]
    values = pl.Series(rng.choice([*vocabulary, "JABOUR", ""], F.DICT_LOOKUP_ROWS + 500))
    large = F.category_codes(values, vocabulary)  # polars' replace_strict
    small = np.concatenate([F.category_codes(values.slice(start, 500), vocabulary)  # the dict lookup
                            for start in range(0, len(values), 500)])
    assert large.dtype == small.dtype == np.int32
    np.testing.assert_array_equal(large, small)
    assert set(large[values.is_in(["JABOUR", ""]).to_numpy()]) == {len(vocabulary)}
