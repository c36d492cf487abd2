"""The scoring function and predict's call list, as a clinic uses them."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from conftest import assert_user_error, run_main
from noshow.clinic import scoring
from noshow.clinic.call_list import call_list_html
from noshow.clinic.policies import Capacity, Cost
from noshow.data.prepare import prepare
from noshow.nn.config import MLPConfig
from noshow.training.train import train_model

FAST = ("--epochs", "2", "--hidden", "32,16", "--quiet")


@pytest.fixture(scope="module")
def model(small_data):
    trained, _ = train_model(prepare(small_data), "numpy", MLPConfig(hidden=(32, 16), epochs=3, patience=0))
    return trained


@pytest.fixture(scope="module")
def model_file(small_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("clinic") / "model.npz"
    result = run_main("train", "--data", str(small_csv), "--out", str(path), *FAST)
    assert result.returncode == 0, result.stderr
    return path


def test_score_columns_are_in_the_documented_order(model, small_data):
    scores = scoring.score(model, small_data)
    assert scores.columns == ["AppointmentID", "PatientId", "AppointmentDay", "no_show_probability",
                              "rank_in_day", "flagged", "reasons"]
    assert scores.height == len(small_data)
    assert scores["AppointmentID"].to_list() == small_data.frame["AppointmentID"].to_list()


def test_score_probability_is_the_models_calibrated_probability(model, small_data):
    scores = scoring.score(model, small_data)
    np.testing.assert_allclose(scores["no_show_probability"], model.predict_proba(small_data), atol=5e-7)


def test_rank_one_is_the_highest_risk_of_each_day(model, small_data):
    scores = scoring.score(model, small_data)
    top = scores.filter(pl.col("rank_in_day") == 1).sort("AppointmentDay")
    highest = scores.group_by("AppointmentDay").agg(pl.col("no_show_probability").max()).sort("AppointmentDay")
    assert top["no_show_probability"].to_list() == highest["no_show_probability"].to_list()


def test_default_policy_flags_at_the_models_threshold(model, small_data):
    scores = scoring.score(model, small_data)
    assert set(scores["flagged"].unique()) <= {0, 1}
    p = model.predict_proba(small_data)
    assert scores["flagged"].to_list() == (p >= model.threshold).astype(int).tolist()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_calls_per_day_flags_exactly_min_k_n_of_each_day(model, small_data, backend):
    scores = scoring.score(model, small_data, policy=Capacity(calls_per_day=10), backend=backend)
    per_day = scores.group_by("AppointmentDay").agg(pl.len().alias("n"), pl.col("flagged").sum().alias("k"),
                                                    pl.col("rank_in_day").filter(pl.col("flagged") == 1).max().alias("worst"))
    assert (per_day["k"] == per_day["n"].clip(upper_bound=10)).all()
    assert (per_day["worst"] == per_day["k"]).all()  # the flagged are ranks 1..k: the highest risks


def test_cost_policy_flags_exactly_the_rows_worth_a_call(model, small_data):
    policy = Cost(slot_value=100.0, call_cost=10.0, call_effect=0.5)
    scores = scoring.score(model, small_data, policy=policy)
    p = model.predict_proba(small_data)
    assert scores["flagged"].to_list() == (p * 0.5 * 100 > 10).astype(int).tolist()
    assert 0 < scores["flagged"].sum() < scores.height


def test_reasons_are_joined_strongest_first(model, small_data):
    scores = scoring.score(model, small_data)
    for text in scores["reasons"].head(200):
        sizes = [float(m) for m in re.findall(r"\(([+-]\d+\.\d\d)\)(?:; |$)", text)]
        assert 1 <= len(sizes) <= 3 and sizes == sorted(sizes, reverse=True)


def test_call_list_is_self_contained_with_one_section_per_day(model, small_data):
    scores = scoring.score(model, small_data, policy=Capacity(calls_per_day=3))
    page = call_list_html(scores, "3 calls per day")
    assert page.count("<section>") == scores["AppointmentDay"].n_unique()
    assert page.count("<tr><td class=num>") == scores["flagged"].sum()
    assert not re.search(r"<script|<link|src=|@import|https?://", page)
    assert "@media print" in page


def test_call_list_rows_are_in_rank_order_within_a_day(model, small_data):
    scores = scoring.score(model, small_data, policy=Capacity(calls_per_day=5))
    page = call_list_html(scores, "5 calls per day")
    first_section = page.split("<section>")[1]
    assert re.findall(r"<tr><td class=num>(\d+)</td>", first_section) == ["1", "2", "3", "4", "5"]


def test_predict_writes_scores_and_call_list(model_file, small_csv, tmp_path):
    out, page = tmp_path / "scores.csv", tmp_path / "calls.html"
    result = run_main("predict", "--model", str(model_file), "--data", str(small_csv), "--out", str(out),
                      "--calls-per-day", "10", "--html", str(page))
    assert result.returncode == 0, result.stderr
    scores = pl.read_csv(out)
    per_day = scores.group_by("AppointmentDay").agg(pl.len().alias("n"), pl.col("flagged").sum().alias("k"))
    assert (per_day["k"] == per_day["n"].clip(upper_bound=10)).all()
    assert page.read_text().count("<section>") == per_day.height


def test_predict_cost_policy_prints_the_expected_net_benefit(model_file, small_csv, tmp_path):
    out = tmp_path / "scores.csv"
    result = run_main("predict", "--model", str(model_file), "--data", str(small_csv), "--out", str(out),
                      "--slot-value", "100", "--call-cost", "20", "--call-effect", "0.5")
    assert result.returncode == 0, result.stderr
    scores = pl.read_csv(out)
    flagged = scores.filter(pl.col("flagged") == 1)["no_show_probability"].to_numpy()
    expected = np.sum(flagged * 0.5 * 100 - 20)
    stated = float(re.search(r"expected net benefit of the list ([\d,.-]+)", result.stdout)[1].replace(",", ""))
    assert stated == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("flags, message", [
    (("--calls-per-day", "-3"), "--calls-per-day: -3 is negative"),
    (("--call-share", "1.5"), "--call-share: 1.5 is outside (0, 1]"),
    (("--call-share", "0"), "--call-share: 0.0 is outside (0, 1]"),
    (("--slot-value", "100", "--call-effect", "0.5"), "missing --call-cost"),
    (("--calls-per-day", "5", "--call-cost", "1"), "choose one policy"),
])
def test_bad_policy_flags_give_one_line_and_write_nothing(model_file, small_csv, tmp_path, flags, message):
    out, page = tmp_path / "scores.csv", tmp_path / "calls.html"
    result = run_main("predict", "--model", str(model_file), "--data", str(small_csv), "--out", str(out),
                      "--html", str(page), *flags)
    assert_user_error(result, message)
    assert not out.exists() and not page.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_model_trained_out_of_core_is_scored_with_reasons(small_csv, small_data):
    from noshow.training.train import train_streamed

    streamed, _ = train_streamed(small_csv, "numpy", MLPConfig(hidden=(16,), epochs=1, patience=0))
    scores = scoring.score(streamed, small_data, policy=Capacity(calls_per_day=5))
    assert scores["reasons"].str.len_chars().min() > 0


def test_scoring_tomorrow_with_history_equals_scoring_it_within_the_whole_file(model, small_data):
    import dataclasses

    from noshow.data import schema as S

    last = small_data.frame[S.APPOINTMENT_DATE].max()
    is_last = small_data.frame[S.APPOINTMENT_DATE] == last
    tomorrow = dataclasses.replace(small_data, frame=small_data.frame.filter(is_last).drop(S.TARGET))
    history = dataclasses.replace(small_data, frame=small_data.frame.filter(~is_last))
    alone = scoring.score(model, tomorrow, history)
    within = scoring.score(model, small_data).filter(is_last)
    # float32 products round by batch shape (~1e-7), so the 6-decimal probabilities may differ by 1e-6
    np.testing.assert_allclose(alone["no_show_probability"], within["no_show_probability"], atol=2e-6)
    assert alone.drop("no_show_probability").equals(within.drop("no_show_probability"))


def test_call_list_marks_a_patient_with_several_appointments_on_a_days_list():
    scores = pl.DataFrame({"AppointmentID": [1, 2, 3], "PatientId": ["77", "77", "88"],
                           "AppointmentDay": ["2016-06-01"] * 3, "no_show_probability": [0.6, 0.5, 0.4],
                           "rank_in_day": [1, 2, 3], "flagged": [1, 1, 1], "reasons": ["age 3 (+0.20)"] * 3})
    page = call_list_html(scores, "3 calls per day")
    assert page.count("2 on this list: one call") == 2


def test_history_that_also_holds_the_scored_appointments_counts_them_once(model, small_data):
    import dataclasses

    from noshow.data import schema as S

    last = small_data.frame[S.APPOINTMENT_DATE].max()
    is_last = small_data.frame[S.APPOINTMENT_DATE] == last
    tomorrow = dataclasses.replace(small_data, frame=small_data.frame.filter(is_last).drop(S.TARGET))
    earlier = dataclasses.replace(small_data, frame=small_data.frame.filter(~is_last))
    everything = dataclasses.replace(small_data, frame=small_data.frame)
    assert scoring.score(model, tomorrow, everything).equals(scoring.score(model, tomorrow, earlier))


# Which rows get reasons (noshow predict --reasons all|flagged|none), in memory and streamed.


def test_flagged_rows_get_the_reasons_of_every_row_and_the_others_an_empty_cell(model, small_data):
    policy = Capacity(calls_per_day=5)
    every = scoring.score(model, small_data, policy=policy)
    flagged = scoring.score(model, small_data, policy=policy, reasons="flagged")
    assert flagged.drop("reasons").equals(every.drop("reasons"))
    is_flagged = every["flagged"] == 1
    assert 0 < is_flagged.sum() < every.height
    assert flagged["reasons"].filter(is_flagged).to_list() == every["reasons"].filter(is_flagged).to_list()
    assert set(flagged["reasons"].filter(~is_flagged)) == {""}


def test_no_reasons_leave_every_cell_empty_and_the_scores_as_they_are(model, small_data):
    every = scoring.score(model, small_data)
    none = scoring.score(model, small_data, reasons="none")
    assert none.drop("reasons").equals(every.drop("reasons"))
    assert set(none["reasons"]) == {""} and none["reasons"].dtype == pl.String


@pytest.mark.parametrize("stream", [False, True])
def test_predict_with_reasons_for_the_flagged_writes_them_for_the_flagged_only(model_file, small_csv, tmp_path, stream):
    every, flagged = tmp_path / "every.csv", tmp_path / "flagged.csv"
    common = ("predict", "--model", str(model_file), "--data", str(small_csv), "--calls-per-day", "4", "--quiet",
              *(("--stream",) if stream else ()))
    assert run_main(*common, "--out", str(every)).returncode == 0
    result = run_main(*common, "--out", str(flagged), "--reasons", "flagged")
    assert result.returncode == 0, result.stderr
    every, flagged = pl.read_csv(every), pl.read_csv(flagged)
    is_flagged = every["flagged"] == 1
    assert flagged["reasons"].filter(is_flagged).to_list() == every["reasons"].filter(is_flagged).to_list()
    assert set(flagged["reasons"].filter(~is_flagged).fill_null("")) == {""}


def test_an_unknown_reasons_choice_is_a_user_error(model_file, small_csv, tmp_path):
    result = run_main("predict", "--model", str(model_file), "--data", str(small_csv), "--out",
                      str(tmp_path / "s.csv"), "--reasons", "some")
    assert result.returncode == 2 and "--reasons" in result.stderr and not (tmp_path / "s.csv").exists()
