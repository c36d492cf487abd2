"""Calibrated model files, a model for use trained on all rows but validation, and its card."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_main
from noshow.clinic.card import card_markdown, card_path
from noshow.data import schema as S
from noshow.data.prepare import prepare
from noshow.data.splits import make_split
from noshow.errors import NoshowError
from noshow.model import METADATA_DIGEST_KEY, METADATA_KEY, TrainedModel, metadata_digest
from noshow.nn.config import MLPConfig
from noshow.stats.calibration import fit_calibrator
from noshow.stats.metrics import best_f1_threshold
from noshow.training.train import train_model

SMALL = MLPConfig(hidden=(32, 16), epochs=3, patience=0)


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    prepared = prepare(small_data)
    model, _ = train_model(prepared, "numpy", SMALL)
    return model, model.save(tmp_path_factory.mktemp("model") / "model.npz"), prepared


def test_model_file_stores_the_calibration_map_as_json(trained):
    model, path, _ = trained
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive[METADATA_KEY].tobytes())
    assert meta["format_version"] == 3
    assert meta["calibration"] == model.calibrator.to_dict()
    assert meta["calibration"]["method"] in ("platt", "isotonic")


def test_predict_proba_applies_the_stored_calibration(trained, small_data):
    model, path, prepared = trained
    loaded = TrainedModel.load(path)
    logits = loaded.predict_logits(prepared.features)
    np.testing.assert_array_equal(loaded.predict_proba(small_data), loaded.calibrator(logits))


def test_calibration_is_fitted_on_validation_rows(trained):
    model, _, prepared = trained
    X_val, y_val = prepared.part("val")
    refitted = fit_calibrator(model.predict_logits(X_val), y_val, model.calibrator.method)
    assert refitted.to_dict() == model.calibrator.to_dict()


def test_threshold_is_max_f1_on_calibrated_validation_probabilities(trained):
    model, _, prepared = trained
    X_val, y_val = prepared.part("val")
    assert model.threshold == best_f1_threshold(y_val, model.calibrator(model.predict_logits(X_val)))


def test_older_model_format_is_refused_with_a_clear_message(trained, tmp_path):
    _, path, _ = trained
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays[METADATA_KEY].tobytes())
    meta["format_version"] = 2
    del meta["calibration"]
    arrays[METADATA_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    with pytest.raises(NoshowError, match="format version 2 predates calibrated probabilities .* retrain"):
        TrainedModel.load(old)


def test_corrupt_calibration_map_is_refused(trained, tmp_path):
    _, path, _ = trained
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays[METADATA_KEY].tobytes())
    meta["calibration"] = {"method": "platt", "a": -2.0, "b": 0.0}
    meta[METADATA_DIGEST_KEY] = metadata_digest(meta)  # re-signed: the map's own check must refuse it
    arrays[METADATA_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(NoshowError, match="bad.npz: bad calibration map"):
        TrainedModel.load(bad)


@pytest.mark.parametrize("kind", ["random", "time", "patient"])
def test_split_for_use_trains_on_every_row_but_validation(small_data, kind):
    split = make_split(small_data.frame, kind, hold_out_test=False)
    assert len(split.test) == 0
    assert sorted(np.r_[split.train, split.val].tolist()) == list(range(len(small_data)))
    assert 0.08 < len(split.val) / len(small_data) < 0.15


def test_time_split_for_use_validates_on_the_most_recent_days(small_data):
    split = make_split(small_data.frame, "time", hold_out_test=False)
    days = small_data.frame[S.APPOINTMENT_DATE]
    assert days.gather(split.val).min() > days.gather(split.train).max()
    assert days.gather(split.val).max() == days.max()


def test_train_command_fits_on_all_rows_but_validation_and_records_them(small_csv, tmp_path):
    path = tmp_path / "m.npz"
    result = run_main("train", "--data", str(small_csv), "--out", str(path), "--split", "time",
                      "--epochs", "2", "--hidden", "16", "--quiet")
    assert result.returncode == 0, result.stderr
    data = TrainedModel.load(path).metadata["data"]
    assert data["n_test"] == 0 and data["held_out_test"] is False
    assert data["n_train"] + data["n_val"] == data["rows"] == 3000
    assert data["train_days"][1] < data["val_days"][0]


def test_train_command_writes_a_model_card_beside_the_model(small_csv, tmp_path):
    path = tmp_path / "clinic.npz"
    result = run_main("train", "--data", str(small_csv), "--out", str(path), "--epochs", "2", "--hidden", "16", "--quiet")
    assert result.returncode == 0, result.stderr
    card = (tmp_path / "clinic.card.md").read_text()
    for heading in ("## Intended use", "## Training data", "## Metrics", "## Subgroups", "## Known limitations"):
        assert heading in card
    assert "**Not** for denying, penalising, delaying or overbooking" in card
    assert "Training rows: 2,700" in card and "No test rows held out" in card


def test_card_path_sits_beside_the_model():
    assert str(card_path("out/model.npz")) == "out/model.card.md"


def test_card_names_a_non_time_split_as_not_the_future_estimate():
    text = card_markdown("card", "numpy twin", {"source": "x.csv", "rows": 10}, "random", "test",
                         {"numpy": {"pr_auc": 0.4, "ece": 0.01}})
    assert "The random split mixes days" in text and "| PR AUC | 0.4000 |" in text
    text = card_markdown("card", "numpy twin", {"source": "x.csv", "rows": 10}, "time", "test", {})
    assert "mixes days" not in text and "honest estimate for future appointments" in text


def test_card_shows_a_given_subgroup_table():
    rows = [{"attribute": "gender", "group": "F", "rows": 700, "calibration_gap": 0.012},
            {"attribute": "gender", "group": "M", "rows": 300, "calibration_gap": -0.031}]
    text = card_markdown("card", "numpy twin", {"source": "x.csv", "rows": 1000}, "time", "test", {}, rows)
    assert "| attribute | group | rows | calibration_gap |" in text
    assert "| gender | M | 300 | -0.0310 |" in text


def test_estimator_probabilities_are_calibrated_on_its_validation_rows():
    from sklearn.datasets import make_classification

    from noshow import NumpyMLPClassifier

    X, y = make_classification(n_samples=600, weights=[0.8], random_state=0)
    est = NumpyMLPClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0).fit(X, y)
    assert est.calibrator_.method in ("platt", "isotonic")
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], est.calibrator_(est.network_logits(X)))
    assert (est.predict(X) == (est.predict_proba(X)[:, 1] > est.threshold_)).all()
