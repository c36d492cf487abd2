"""The monitor's maths and report: intervals against published values, and a simulated month whose
call effect is known (calls prevent 30% of no-shows), recovered from the randomised holdout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_main
from noshow.store import effect, monitor
from noshow.store.database import open_store
from simulate import Month, simulate_month


def test_the_wilson_interval_matches_newcombes_published_example():
    # Newcombe (1998), Stat Med 17:857, single proportion 81/263: 0.2553 to 0.3662.
    low, high = effect.wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_the_difference_interval_matches_newcombes_published_example():
    # Newcombe (1998), Stat Med 17:873, method 10, 56/70 - 48/80: 0.0524 to 0.3339.
    low, high = effect.newcombe(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_the_relative_effect_interval_is_the_log_risk_ratio_one():
    e, (low, high) = effect.relative_effect(30, 100, 40, 100)
    se = np.sqrt(1 / 30 - 1 / 100 + 1 / 40 - 1 / 100)
    assert e == pytest.approx(0.25)
    assert (low, high) == pytest.approx((1 - 0.75 * np.exp(1.959964 * se), 1 - 0.75 * np.exp(-1.959964 * se)), rel=1e-6)


@pytest.fixture(scope="module")
def month_store(tmp_path_factory):
    engine = open_store(str(tmp_path_factory.mktemp("month") / "noshow.db"))
    simulate_month(engine, Month(seed=1))
    return engine


@pytest.fixture(scope="module")
def month(month_store):
    return monitor.monitor(month_store)


def test_the_randomised_estimate_recovers_the_known_call_effect_within_its_interval(month):
    estimate = month["effect"]["randomised"]
    low, high = estimate["E_ci"]
    assert low < 0.3 < high
    assert low > 0  # the month is large enough to tell the effect from none
    assert estimate["absolute_ci"][1] < 0
    assert month["effect"]["observational"] is None  # randomised: no observational stand-in


def test_realised_precision_and_recall_count_the_lists_flags(month):
    s = month["summary"]
    assert (s["appointments"], s["flagged"], s["held_out"]) == (16_800, 4_200, 420)
    assert sum(d["flagged"] for d in month["per_day"]) == 4_200 and len(month["per_week"]) == 4
    week = month["per_week"][0]
    assert 0 < week["precision"] < 1 and 0 < week["recall"] < 1


def test_the_unacted_on_appointments_are_the_not_flagged_and_the_held_out_weighted_back(month):
    assert month["calibration"]["unacted"]["n"] == 12_600 + 420
    # Risks are the true ones, so calibration on the appointments nobody acted on is good.
    assert month["calibration"]["unacted"]["ece"] < 0.03
    assert month["warnings"] == []


def test_without_a_holdout_the_comparison_around_the_cutoff_is_labelled_observational(tmp_path):
    engine = open_store(str(tmp_path / "noshow.db"))
    simulate_month(engine, Month(days=4, holdout_share=None, seed=2))
    result = monitor.monitor(engine)
    assert result["effect"]["randomised"] is None
    assert result["effect"]["observational"]["method"].startswith("observational, NOT randomised")


def test_monitor_writes_the_report_and_its_json(month_store, tmp_path):
    from noshow.store.monitor_report import write_monitor

    written = write_monitor(monitor.monitor(month_store), tmp_path / "monitor")
    saved = json.loads(written[0].read_text())
    assert saved["effect"]["randomised"]["E"] == pytest.approx(monitor.monitor(month_store)["effect"]["randomised"]["E"])
    page = written[1].read_text()
    assert page.count("<img ") == 3 and "E = " in page and "Thresholds:" in page


def test_predict_call_effect_measured_uses_the_stores_estimate(month_store, tiny_model_file, small_csv, tmp_path):
    db = str(month_store.url.database)
    estimate = effect.stored_estimate(month_store)["E"]
    result = run_main("predict", "--model", str(tiny_model_file), "--data", str(small_csv), "--out", str(tmp_path / "s.csv"),
                      "--slot-value", "100", "--call-cost", "5", "--call-effect", "measured", "--db", db)
    assert result.returncode == 0, result.stderr
    assert f"p x {estimate:g} x 100 > 5" in result.stdout


def test_call_effect_measured_without_an_estimate_is_a_user_error(tiny_model_file, small_csv, tmp_path):
    from conftest import assert_user_error

    assert_user_error(run_main("predict", "--model", str(tiny_model_file), "--data", str(small_csv), "--out",
                               str(tmp_path / "s.csv"), "--slot-value", "100", "--call-cost", "5", "--call-effect",
                               "measured", "--db", str(tmp_path / "empty.db")), "no randomised estimate yet")


def test_the_monitor_command_writes_its_folder(month_store, tmp_path):
    result = run_main("monitor", "--db", str(month_store.url.database), "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert "call effect E = " in result.stdout and (tmp_path / "m" / "monitor.html").exists()


def test_a_miscalibrated_model_is_warned_of_with_its_threshold(tmp_path):
    import sqlalchemy as sa

    from noshow.store import tables as T

    engine = open_store(str(tmp_path / "noshow.db"))
    simulate_month(engine, Month(days=7, seed=3))
    with engine.begin() as connection:  # the model said half the risk it should have
        connection.execute(sa.update(T.list_rows).values(probability=T.list_rows.c.probability / 2))
    result = monitor.monitor(engine)
    assert any(w.startswith("observed no-show rate") and f"more than {monitor.THRESHOLDS['calibration_gap']}" in w
               for w in result["warnings"])
    assert result["retrain_due"] is True
