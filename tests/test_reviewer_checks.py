"""The checks a clinical reviewer asks of compare's report: calibration-in-the-large and slope
(against scikit-learn and a root finder) and the rolling-origin evaluation's days and columns. The
report's files (HTML and PDF from one template, tripod.md) are tested in test_compare.py."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression

from noshow.evaluation.rolling import ROLLING_KEYS, origin_days, origin_parts, rolling_origin, score_day
from noshow.nn.config import MLPConfig
from noshow.stats.metrics import calibration_fit, calibration_fit_ci, sigmoid64


def _miscalibrated(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from logit 0.3 + 0.6 z, predictions sigmoid(z): too extreme and too low."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.2, 1.3, n)
    y = (rng.random(n) < sigmoid64(0.3 + 0.6 * z)).astype(int)
    return y, sigmoid64(z)


def test_calibration_slope_equals_scikit_learns_unpenalised_logistic_regression_on_the_logit():
    y, p = _miscalibrated()
    z = np.log(p / (1 - p))
    oracle = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(z[:, None], y)
    fit = calibration_fit(y, p)
    assert fit["slope"] == pytest.approx(oracle.coef_[0, 0], abs=1e-6)
    assert fit["recalibrated_intercept"] == pytest.approx(oracle.intercept_[0], abs=1e-6)
    assert 0.5 < fit["slope"] < 0.7  # it finds the slope the labels were drawn with


def test_calibration_in_the_large_solves_the_score_equation_with_the_logit_as_offset():
    y, p = _miscalibrated()
    z = np.log(p / (1 - p))
    oracle = brentq(lambda a: np.sum(y - sigmoid64(a + z)), -10, 10, xtol=1e-14)
    assert calibration_fit(y, p)["intercept"] == pytest.approx(oracle, abs=1e-9)


def test_perfectly_calibrated_probabilities_have_intercept_near_0_and_slope_near_1():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.6, 200_000)
    y = (rng.random(len(p)) < p).astype(int)
    fit = calibration_fit(y, p)
    assert abs(fit["intercept"]) < 0.02 and abs(fit["slope"] - 1) < 0.02


def test_calibration_intervals_hold_the_estimate_and_narrow_with_more_rows():
    y, p = _miscalibrated(20_000)
    few, many = calibration_fit_ci(y[:1000], p[:1000]), calibration_fit_ci(y, p)
    fit = calibration_fit(y, p)
    for key in ("intercept", "slope"):
        assert many[key][0] < fit[key] < many[key][1]
        assert many[key][1] - many[key][0] < 0.6 * (few[key][1] - few[key][0])


def test_origin_days_are_the_last_ten_distinct_days():
    day = np.repeat(np.arange(30), 3)[::-1]
    assert origin_days(day).tolist() == list(range(20, 30))
    assert origin_days(np.array([5, 5, 6, 7])).tolist() == [6, 7]  # fewer days: all but the first


def test_an_origin_trains_on_earlier_days_holds_out_their_latest_tenth_and_scores_its_own_day():
    day = np.repeat(np.arange(21), 2)
    train, val, scored = origin_parts(day, 20)
    assert sorted(set(day[train])) == list(range(18))
    assert sorted(set(day[val])) == [18, 19]  # round(0.1 * 20) days
    assert set(day[scored]) == {20} and len(scored) == 2


def test_a_days_score_holds_every_column_and_the_call_list_is_its_top_tenth():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0] * 2)
    p = np.linspace(0.9, 0.05, 20)
    scores = score_day(y, p, np.arange(20))
    assert scores["rows"] == 20 and scores["no_show_rate"] == 0.2
    assert scores["call_list_precision"] == 1.0  # the two highest risks are both no-shows
    assert scores["pr_auc"] is not None and scores["calibration_in_the_large"] is not None


def test_rolling_origin_gives_one_row_per_origin_day_with_every_column(small_data):
    config = MLPConfig(hidden=(8,), epochs=2, members=1, patience=0)
    rows = rolling_origin(small_data, "numpy", config, origins=3)
    days = sorted({str(d) for d in small_data.frame["appointment_date"].to_list()})[-3:]
    assert [r["day"] for r in rows] == days
    assert all(set(r) == set(ROLLING_KEYS) for r in rows)
    assert all(0 < r["roc_auc"] < 1 and r["rows"] > 0 for r in rows)
    assert [r["train_rows"] for r in rows] == sorted(r["train_rows"] for r in rows)


def test_every_document_and_section_the_tripod_checklist_points_at_exists():
    import re
    from pathlib import Path

    from noshow.evaluation.tripod import ITEMS

    root = Path(__file__).resolve().parents[1]
    pointers = [m for *_, answer in ITEMS for m in re.finditer(r"(docs/[\w-]+\.md|README\.md)(?:, ([A-Z][\w ]+))?", answer)]
    assert len(pointers) > 20
    for match in pointers:
        document, section = root / match.group(1), match.group(2)
        assert document.exists(), match.group(0)
        if section:  # a heading of that document starts with the section's name
            headings = [line.lstrip("#").strip() for line in document.read_text().splitlines() if line.startswith("#")]
            assert any(h.startswith(section.strip()) for h in headings), match.group(0)
