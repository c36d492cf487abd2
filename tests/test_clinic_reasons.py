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


def test_reasons_are_the_groups_that_raise_the_logit_strongest_first_and_none_when_none_does():
    sizes = np.array([[0.1, 0.5, -0.2, 0.3, 0.2], [-0.3, -0.1, -0.2, -0.4, -0.5], [0.004, 0.2, -1, -1, -1],
                      [0.0049, 0.00501, 0, 0, 0]])
    assert R.top_reasons(sizes) == [[1, 3, 4], [], [1], [1]]
    np.testing.assert_array_equal(R.cited_groups(sizes)[1:], [[-1, -1, -1], [1, -1, -1], [1, -1, -1]])


def test_a_row_that_no_group_raises_says_so_in_words(model_and_raw):
    _, raw = model_and_raw
    sizes = np.zeros((3, len(R.GROUPS)))
    sizes[0, 0], sizes[1, :] = 0.2, -0.1
    texts = R.reason_strings(raw.head(3), sizes).to_list()
    assert texts[0].endswith("(+0.20)") and texts[1:] == [R.NO_RAISE, R.NO_RAISE]


def test_no_reason_states_a_size_that_does_not_raise_the_risk(model_and_raw):
    model, raw = model_and_raw
    _, sizes = R.reason_sizes(model, raw, "numpy")
    stated = [float(REASON.match(part)["size"]) for text in R.reason_strings(raw, sizes)
              for part in text.split(R.SEPARATOR) if text != R.NO_RAISE]
    assert len(stated) >= raw.height and min(stated) >= 0.01


def test_the_words_of_a_reason_are_those_of_the_columns_it_is_worded_from(model_and_raw):
    _, raw = model_and_raw
    for row in raw.head(300).iter_rows(named=True):
        for group in R.GROUPS:
            assert R.describe(group, {c: row[c] for c in R._reads(group)}) == R.describe(group, row)


def test_reason_strings_word_each_cited_group_as_describe_and_format_reason_do(model_and_raw):
    model, raw = model_and_raw
    raw = raw.head(500)
    _, sizes = R.reason_sizes(model, raw, "numpy")
    names = list(R.GROUPS)
    expected = [R.SEPARATOR.join(R.format_reason(R.describe(names[g], row), sizes[i, g]) for g in cited) or R.NO_RAISE
                for i, (row, cited) in enumerate(zip(raw.iter_rows(named=True), R.top_reasons(sizes)))]
    assert R.reason_strings(raw, sizes).to_list() == expected


def test_sizes_print_as_python_formats_them_with_a_sign_and_two_decimals():
    sizes = np.random.default_rng(0).standard_normal(10_000).astype(np.float32).astype(np.float64)
    sizes = np.concatenate([sizes, [0.125, -0.125, 0.005, -0.0, 0.0, 12.345]])
    assert R.size_texts(sizes).to_list() == [f"{s:+.2f}" for s in sizes]


def test_both_twins_compute_the_same_sizes_from_one_model_file(model_and_raw):
    model, raw = model_and_raw
    logits_np, sizes_np = R.reason_sizes(model, raw, "numpy")
    logits_torch, sizes_torch = R.reason_sizes(model, raw, "torch")
    np.testing.assert_allclose(sizes_np, sizes_torch, atol=1e-4)
    top_np, top_torch = R.cited_groups(sizes_np)[:, 0], R.cited_groups(sizes_torch)[:, 0]
    assert np.mean(top_np == top_torch) >= 0.999


def occluded_copies_sizes(model, raw, backend):
    """The definition, by brute force: each group's columns set to the reference in the raw
    features, re-encoded and scored as whole rows by ``model.predict_logits``; rows whose group
    already is the reference get size 0."""
    reference = model.metadata[R.REFERENCE_KEY]
    dtype = model.config.np_dtype
    encoded = model.pipeline.encode(raw, dtype)
    reference_row = model.pipeline.encode(R.with_reference(raw.head(1), reference, R.RAW_COLUMNS), dtype)
    logits = model.predict_logits(encoded, backend).astype(np.float64)
    sizes = np.zeros((raw.height, len(R.GROUPS)))
    for g, (name, columns) in enumerate(R.GROUPS.items()):
        occluded = model.predict_logits(model.pipeline.encode(R.with_reference(raw, reference, columns), dtype), backend)
        moved = ~R._at_reference(encoded, reference_row, name)
        sizes[moved, g] = (logits - occluded)[moved]
    return logits, sizes


@pytest.fixture(scope="module")
def model64_and_raw(small_data):
    config = MLPConfig(hidden=(32, 16), epochs=2, patience=0, members=2, dtype="float64")
    model, _ = train_model(prepare(small_data, dtype="float64"), "numpy", config)
    return model, raw_features(small_data.frame).head(1000)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sizes_from_the_first_layers_change_are_the_occluded_copies_sizes_in_float64(model64_and_raw, backend):
    model, raw = model64_and_raw
    logits, sizes = R.reason_sizes(model, raw, backend)
    direct_logits, direct = occluded_copies_sizes(model, raw, backend)
    np.testing.assert_allclose(logits, direct_logits, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sizes, direct, rtol=0, atol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sizes_from_the_first_layers_change_are_the_occluded_copies_sizes_in_float32(model_and_raw, backend):
    model, raw = model_and_raw
    raw = raw.head(1000)
    logits, sizes = R.reason_sizes(model, raw, backend)
    direct_logits, direct = occluded_copies_sizes(model, raw, backend)
    np.testing.assert_allclose(logits, direct_logits, rtol=0, atol=1e-5)
    np.testing.assert_allclose(sizes, direct, rtol=0, atol=1e-5)


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


def test_reasons_worded_in_pieces_are_the_reasons_worded_at_once(model_and_raw, monkeypatch):
    model, raw = model_and_raw
    raw = raw.head(200)
    _, sizes = R.reason_sizes(model, raw, "numpy")
    at_once = R.reason_strings(raw, sizes)
    monkeypatch.setattr(R, "STRING_ROWS", 7)
    assert R.reason_strings(raw, sizes).to_list() == at_once.to_list()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_each_twins_first_layer_from_the_compact_rows_and_the_layers_above_are_its_forward(model64_and_raw, backend):
    model, raw = model64_and_raw
    encoded = model.pipeline.encode(raw.head(300), model.config.np_dtype)
    (first, rest, _), *_ = R._member_passes(model, backend, "cpu")
    member = model._network(backend, "cpu").members[0]
    np.testing.assert_allclose(rest(first(encoded.dense, encoded.hot)), member.predict_logits(encoded), rtol=0, atol=1e-12)
