"""Reasons: occlusion sizes are real, both twins compute the same ones, and they read as words."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from noshow.clinic import reasons as R
from noshow.data.features import BINARY, CATEGORICAL, NUMERIC, raw_features
from noshow.data.prepare import prepare
from noshow.errors import NoshowError
from noshow.nn.config import MLPConfig
from noshow.training.train import train_model

REASON = re.compile(r"^(?P<text>.+) \((?P<size>[+-]\d+\.\d\d)\)$")


@pytest.fixture(scope="module")
def model_and_raw(small_data):
    model, _ = train_model(prepare(small_data), "numpy", MLPConfig(hidden=(32, 16), epochs=3, patience=0))
    return model, raw_features(small_data.frame)


def test_groups_cover_every_feature_column_exactly_once():
    grouped = [c for columns in R.GROUPS.values() for c in columns]
    assert sorted(grouped) == sorted((*NUMERIC, *BINARY, *CATEGORICAL))
    assert len(grouped) == len(set(grouped))


def test_reference_is_lower_median_and_most_frequent_value():
    raw = pl.DataFrame({name: [1, 2, 3, 4] for name in NUMERIC}).with_columns(
        pl.Series("age", [10.0, 20.0, 30.0, 40.0]),
        *[pl.Series(name, [0, 1, 1, 0], dtype=pl.Int8) for name in BINARY],
        *[pl.Series(name, ["b", "a", "b", "a"]) for name in CATEGORICAL])
    reference = R.reference_values(raw)
    assert reference["lead_days"] == 2 and isinstance(reference["lead_days"], int)
    assert reference["age"] == 20.0
    assert reference["male"] == 0  # 0 and 1 tie: the smaller
    assert reference["neighbourhood"] == "a"  # "a" and "b" tie: the smaller


def test_model_file_stores_the_training_reference(model_and_raw, tmp_path):
    from noshow.model import TrainedModel

    model, _ = model_and_raw
    loaded = TrainedModel.load(model.save(tmp_path / "m.npz"))
    assert loaded.metadata[R.REFERENCE_KEY] == model.metadata[R.REFERENCE_KEY]
    assert sorted(loaded.metadata[R.REFERENCE_KEY]) == sorted(R.RAW_COLUMNS)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_each_cited_reason_is_the_logit_drop_when_its_group_is_set_to_the_reference(model_and_raw, backend):
    model, raw = model_and_raw
    raw = raw.head(300)
    logits, sizes = R.reason_sizes(model, raw, backend)
    texts = R.reason_strings(raw, sizes)
    reference = model.metadata[R.REFERENCE_KEY]
    names = list(R.GROUPS)
    # The oracle works on raw features: the cited group's columns replaced, re-encoded, re-scored.
    rows, stated, occluded = [], [], []
    for i, cited in enumerate(R.top_reasons(sizes)):
        for g, part in zip(cited, texts[i].split(R.SEPARATOR)):
            rows.append(i)
            stated.append(float(REASON.match(part)["size"]))
            occluded.append(R.with_reference(raw[i:i + 1], reference, R.GROUPS[names[g]]))
    rescored = model.predict_logits(model.pipeline.encode(pl.concat(occluded), model.config.np_dtype), backend)
    drops = logits[rows] - rescored
    assert len(rows) >= 300
    np.testing.assert_allclose(drops, stated, atol=0.005 + 1e-6)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_every_row_carries_one_to_three_reasons(model_and_raw, backend):
    model, raw = model_and_raw
    _, sizes = R.reason_sizes(model, raw, backend)
    counts = [len(text.split(R.SEPARATOR)) for text in R.reason_strings(raw, sizes)]
    assert min(counts) >= 1 and max(counts) <= 3


def test_reasons_are_strongest_first_and_positive_when_any_group_raises_the_logit():
    sizes = np.array([[0.1, 0.5, -0.2, 0.3, 0.2], [-0.3, -0.1, -0.2, -0.4, -0.5], [0.004, 0.2, -1, -1, -1]])
    assert R.top_reasons(sizes) == [[1, 3, 4], [1], [1]]


def test_both_twins_compute_the_same_sizes_from_one_model_file(model_and_raw):
    model, raw = model_and_raw
    logits_np, sizes_np = R.reason_sizes(model, raw, "numpy")
    logits_torch, sizes_torch = R.reason_sizes(model, raw, "torch")
    np.testing.assert_allclose(sizes_np, sizes_torch, atol=1e-4)
    top_np = [c[0] for c in R.top_reasons(sizes_np)]
    top_torch = [c[0] for c in R.top_reasons(sizes_torch)]
    assert np.mean(np.equal(top_np, top_torch)) >= 0.999


def test_batched_occlusion_logits_are_the_models_logits(model_and_raw):
    model, raw = model_and_raw
    logits, _ = R.reason_sizes(model, raw, "numpy")
    direct = model.predict_logits(model.pipeline.encode(raw, model.config.np_dtype), "numpy")
    np.testing.assert_allclose(logits, direct, atol=1e-5)


def test_a_group_already_at_the_reference_has_size_zero_exactly(model_and_raw):
    model, raw = model_and_raw
    _, sizes = R.reason_sizes(model, raw, "numpy")
    encoded = model.pipeline.encode(raw, model.config.np_dtype)
    reference_row = model.pipeline.encode(
        R.with_reference(raw.head(1), model.metadata[R.REFERENCE_KEY], R.RAW_COLUMNS), model.config.np_dtype)
    at_reference = np.stack([R._at_reference(encoded, reference_row, g) for g in R.GROUPS], axis=1)
    assert at_reference.any() and (~at_reference).any()
    assert np.all(sizes[at_reference] == 0.0)
    assert np.mean(sizes[~at_reference] != 0.0) > 0.99


@pytest.mark.parametrize("group, values, text", [
    ("lead_time", {"lead_days": 34}, "booked 34 days ahead"),
    ("lead_time", {"lead_days": 0}, "booked the same day"),
    ("prior_no_shows", {"prior_no_shows": 2, "prior_appointments": 3}, "missed 2 of 3 earlier visits"),
    ("latest_outcome", {"prior_appointments": 2, "previous_no_show": 1}, "missed the latest earlier visit"),
    ("sms", {"SMS_received": 0}, "no SMS reminder"),
    ("weekday", {"weekday": "1"}, "appointment on a Monday"),
    ("conditions", {"Hipertension": 1, "Diabetes": 1, "Alcoholism": 0, "handicap": "0"}, "recorded hypertension, diabetes"),
])
def test_reasons_read_as_plain_words(group, values, text):
    assert R.describe(group, values) == text


def test_format_reason_shows_the_signed_size_with_two_decimals():
    assert R.format_reason("booked 34 days ahead", 0.5012) == "booked 34 days ahead (+0.50)"
    assert R.format_reason("age 37", -0.126) == "age 37 (-0.13)"


def test_a_model_without_a_reference_is_refused(model_and_raw):
    import dataclasses

    model, raw = model_and_raw
    bare = dataclasses.replace(model, metadata={})
    with pytest.raises(NoshowError, match="no valid reason reference"):
        R.reason_sizes(bare, raw.head(5))


def test_no_rows_give_no_reasons(model_and_raw):
    model, raw = model_and_raw
    logits, sizes = R.reason_sizes(model, raw.head(0))
    assert logits.shape == (0,) and sizes.shape == (0, len(R.GROUPS))
