"""Drift: a file that no longer looks like the training data is named, one line per problem."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conftest import run_main
from noshow.clinic.drift import PSI_WARN, STALE_DAYS, UNSEEN_WARN, drift_report, psi, training_profile
from noshow.data import schema as S
from noshow.data.features import raw_features


def test_psi_of_identical_shares_is_zero_and_grows_with_the_shift():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert 0 < psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * np.log(0.9 / 0.5) + 0.4 * np.log(0.5 / 0.1))


@pytest.fixture(scope="module")
def profile(small_data):
    frame = small_data.frame
    return training_profile(raw_features(frame), frame[S.APPOINTMENT_DATE])


def test_the_training_rows_themselves_show_no_drift(profile, small_data):
    frame = small_data.frame
    report = drift_report(profile, raw_features(frame), frame[S.APPOINTMENT_DATE])
    assert report["warnings"] == []
    assert max(report["groups"].values()) < 1e-9


def test_a_shifted_file_warns_per_problem_with_its_threshold(profile, small_data):
    frame = small_data.frame
    shifted = frame.with_columns(
        (pl.col(S.APPOINTMENT_DATE) + pl.duration(days=STALE_DAYS + 30)).alias(S.APPOINTMENT_DATE),
        (pl.col(S.AGE) // 4).alias(S.AGE),  # a paediatric clinic's file
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.lit("NOVO BAIRRO")).otherwise(pl.col(S.NEIGHBOURHOOD))
        .alias(S.NEIGHBOURHOOD),
    )
    report = drift_report(profile, raw_features(shifted), shifted[S.APPOINTMENT_DATE])
    text = "\n".join(report["warnings"])
    assert report["groups"]["age"] > PSI_WARN and "feature group 'age' has shifted" in text
    assert report["unseen_neighbourhood_share"] == pytest.approx(0.2, abs=0.01)
    assert UNSEEN_WARN < 0.2
    assert f"days past the last training day {profile['last_day']}" in text
    assert len(report["warnings"]) == 3 + sum(g > PSI_WARN for name, g in report["groups"].items() if name != "age")


def test_predict_warns_and_check_prints_the_table_for_a_shifted_file(small_csv, tmp_path):
    model = tmp_path / "m.npz"
    assert run_main("train", "--data", str(small_csv), "--out", str(model), "--epochs", "1", "--hidden", "8",
                    "--members", "1", "--quiet").returncode == 0
    frame = pl.read_csv(small_csv, infer_schema=False)
    moved = frame.with_columns(pl.col(S.APPOINTMENT_DAY).str.replace("^2016", "2017"))
    shifted = tmp_path / "next_year.csv"
    moved.write_csv(shifted)
    result = run_main("predict", "--model", str(model), "--data", str(shifted), "--out", str(tmp_path / "s.csv"))
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "days past the last training day" in line]
    assert all(line.startswith("noshow: warning:") for line in result.stderr.splitlines() if "shift" in line)
    table = run_main("check", "--data", str(shifted), "--model", str(model))
    assert table.returncode == 0, table.stderr
    assert "drift against the model's training data" in table.stdout and "lead_days" in table.stdout
    same = run_main("check", "--data", str(small_csv), "--model", str(model))
    assert "no warnings" in same.stdout
