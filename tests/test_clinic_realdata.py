"""Calibration and reasons on the real file (a small, quickly trained twin; the full-size numbers
are measured by bench/clinic)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from noshow.clinic.reasons import cited_groups, reason_sizes
from noshow.data.prepare import prepare
from noshow.nn.config import MLPConfig
from noshow.stats.calibration import Calibrator, expected_calibration_error
from noshow.training.train import train_model

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def fitted(real_data):
    prepared = prepare(real_data, "random")
    model, _ = train_model(prepared, "numpy", MLPConfig(members=1, epochs=3, patience=0))
    X_test, y_test = prepared.part("test")
    return model, prepared, X_test, y_test, model.predict_logits(X_test)


def test_calibrated_ece_on_the_random_split_test_rows_is_at_most_0_02(fitted):
    model, _, _, y_test, logits = fitted
    assert expected_calibration_error(y_test, model.calibrator(logits)) <= 0.02


def test_calibration_keeps_pr_auc_and_roc_auc_within_0_001(fitted):
    model, _, _, y_test, logits = fitted
    p, raw = model.calibrator(logits), Calibrator("identity")(logits)
    assert abs(average_precision_score(y_test, p) - average_precision_score(y_test, raw)) <= 0.001
    assert abs(roc_auc_score(y_test, p) - roc_auc_score(y_test, raw)) <= 0.001


def test_one_model_served_by_either_backend_gives_the_same_top_reason_on_999_of_1000_test_rows(fitted):
    model, prepared, X_test, _, _ = fitted
    raw = prepared.raw[prepared.split.test]
    tops = [cited_groups(reason_sizes(model, raw, backend, encoded=X_test)[1])[:, 0] for backend in ("numpy", "torch")]
    assert np.mean(tops[0] == tops[1]) >= 0.999
