"""Calibration maps: strictly increasing, JSON round trip, AUC unchanged, ECE as defined."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from noshow.errors import NoshowError
from noshow.stats.calibration import Calibrator, cross_validated_log_loss, expected_calibration_error, fit_calibrator


def overconfident_scores(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with true log-odds t and a network-like logit 2.5 t + 1.2 (too steep, shifted up),
    as a class-weighted network gives; float32 like the twins."""
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(-1.4, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_log_odds))).astype(np.int64)
    return (2.5 * true_log_odds + 1.2).astype(np.float32), y


@pytest.mark.parametrize("method", ["platt", "isotonic", "identity"])
def test_map_is_strictly_increasing_over_the_whole_line(method):
    z, y = overconfident_scores()
    cal = fit_calibrator(z, y, method)
    grid = np.linspace(-40, 40, 200_001)
    assert np.all(np.diff(cal.log_odds(grid)) > 0)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_keeps_pr_and_roc_auc(method):
    z, y = overconfident_scores()
    p = fit_calibrator(z[:2000], y[:2000], method)(z[2000:])
    assert len(np.unique(p)) == len(np.unique(z[2000:]))  # no new ties
    assert average_precision_score(y[2000:], p) == pytest.approx(average_precision_score(y[2000:], z[2000:]), abs=1e-12)
    assert roc_auc_score(y[2000:], p) == pytest.approx(roc_auc_score(y[2000:], z[2000:]), abs=1e-12)


@pytest.mark.parametrize("method", ["platt", "isotonic", "identity"])
def test_map_round_trips_through_json(method):
    z, y = overconfident_scores()
    cal = fit_calibrator(z, y, method)
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.method == method
    np.testing.assert_array_equal(again(z), cal(z))


def test_calibrated_probabilities_are_float64():
    z, y = overconfident_scores()
    assert fit_calibrator(z, y, "platt")(z).dtype == np.float64


def test_platt_recovers_the_true_map():
    z, y = overconfident_scores(n=200_000)
    cal = fit_calibrator(z, y, "platt")
    # true log-odds = (z - 1.2) / 2.5
    assert cal.params["a"] == pytest.approx(0.4, abs=0.01)
    assert cal.params["b"] == pytest.approx(-0.48, abs=0.02)


def test_calibration_lowers_ece_on_new_rows():
    z, y = overconfident_scores(n=20_000)
    cal = fit_calibrator(z[:10_000], y[:10_000])
    raw = 1 / (1 + np.exp(-z[10_000:].astype(np.float64)))
    assert expected_calibration_error(y[10_000:], raw) > 0.1
    assert expected_calibration_error(y[10_000:], cal(z[10_000:])) < 0.02


def test_auto_chooses_platt_when_the_truth_is_a_logistic_map():
    z, y = overconfident_scores(n=20_000)
    assert fit_calibrator(z, y, "auto").method == "platt"


def test_auto_chooses_isotonic_when_the_truth_is_a_staircase():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 20_000)
    y = (rng.random(len(z)) < np.where(z < 0, 0.05, np.where(z < 1, 0.6, 0.65))).astype(int)
    assert cross_validated_log_loss(z, y, "isotonic") < cross_validated_log_loss(z, y, "platt")
    assert fit_calibrator(z, y, "auto").method == "isotonic"


def test_ece_equals_a_hand_computation_with_equal_mass_bins():
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.4])
    y = np.array([0, 1, 1, 1, 0, 0])
    # sorted by p: (0.1,0) (0.2,1) (0.3,0) | (0.4,0) (0.8,1) (0.9,1) -> 2 bins of 3 rows
    by_hand = 0.5 * abs(0.2 - 1 / 3) + 0.5 * abs(0.7 - 2 / 3)
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(by_hand, abs=1e-15)


def test_ece_bins_differ_in_size_by_at_most_one():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    y = np.array([0, 0, 1, 1, 1])
    # bins (0.1,0.2,0.3) and (0.4,0.5) as numpy.array_split cuts 5 rows in 2
    by_hand = 3 / 5 * abs(0.2 - 1 / 3) + 2 / 5 * abs(0.45 - 1.0)
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(by_hand, abs=1e-15)


def test_unknown_method_is_a_user_error():
    z, y = overconfident_scores()
    with pytest.raises(NoshowError, match="unknown calibration method"):
        fit_calibrator(z, y, "beta")


@pytest.mark.parametrize("bad", [{"method": "platt", "a": -1.0, "b": 0.0},
                                 {"method": "isotonic", "knots_logit": [0, 1], "knots_log_odds": [1, 1]},
                                 {"method": "magic"}, {"a": 1.0}])
def test_malformed_map_is_refused(bad):
    with pytest.raises(NoshowError, match="bad calibration map"):
        Calibrator.from_dict(bad)


def test_platt_on_separable_rows_stays_finite_and_increasing():
    z = np.r_[np.linspace(-3, -1, 50), np.linspace(1, 3, 50)]
    y = np.r_[np.zeros(50), np.ones(50)]
    cal = fit_calibrator(z, y, "platt")
    assert np.isfinite(cal.params["a"]) and cal.params["a"] > 0


def test_reliability_bins_are_equal_mass_in_increasing_probability():
    from noshow.stats.calibration import reliability_bins

    p = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.4, 0.5])
    y = np.array([1, 0, 1, 0, 0, 1, 0])
    predicted, observed, rows = reliability_bins(y, p, bins=3)
    # sorted: (0.1,0) (0.2,0) (0.3,0) | (0.4,1) (0.5,0) | (0.8,1) (0.9,1)
    assert rows.tolist() == [3, 2, 2]
    np.testing.assert_allclose(predicted, [0.2, 0.45, 0.85])
    np.testing.assert_allclose(observed, [0.0, 0.5, 1.0])


def test_probabilities_are_scipys_expit_to_1e_15_relative_in_both_tails():
    """The one sigmoid behind every probability (calibration, metrics), against scipy's expit."""
    from scipy.special import expit

    from noshow.stats.metrics import sigmoid64

    logits = np.linspace(-700, 700, 14_001).astype(np.float32)
    oracle = expit(logits.astype(np.float64))
    np.testing.assert_allclose(Calibrator("identity")(logits), oracle, rtol=1e-15, atol=0)
    np.testing.assert_allclose(sigmoid64(logits), oracle, rtol=1e-15, atol=0)
    assert sigmoid64(logits).dtype == np.float64
