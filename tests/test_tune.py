"""noshow tune: a reproducible search that starts from the current settings and never sees test rows."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import assert_user_error, run_main
from noshow.data.prepare import prepare
from noshow.nn.config import MLPConfig
from noshow.training.tune import SPACE, point_of, to_config, tune

FAST = MLPConfig(hidden=(128,), epochs=2, patience=0, members=1)


@pytest.fixture(scope="module")
def prepared(small_data):
    return prepare(small_data)


@pytest.fixture(scope="module")
def result(prepared):
    return tune(prepared, FAST, trials=3, seeds=1)


def test_first_trial_is_the_current_settings(result):
    assert result["baseline"]["number"] == 0
    assert result["trials"][0]["params"] == point_of(FAST)


def test_best_trial_score_is_what_its_settings_train_to(prepared, result):
    best = MLPConfig.from_dict(result["best_config"])
    again = tune(prepared, best, trials=1, seeds=1)["trials"][0]
    assert again["params"] == result["best"]["params"]
    assert again["val_pr_auc"] == result["best"]["val_pr_auc"]


def test_best_config_holds_the_best_trial_settings(result):
    best = MLPConfig.from_dict(result["best_config"])
    assert point_of(best) == result["best"]["params"]
    assert (best.epochs, best.patience) == (FAST.epochs, FAST.patience)


def test_search_is_reproducible_with_its_seed(prepared, result):
    again = tune(prepared, FAST, trials=3, seeds=1)
    assert [t["params"] for t in again["trials"]] == [t["params"] for t in result["trials"]]
    assert [t["val_pr_auc"] for t in again["trials"]] == [t["val_pr_auc"] for t in result["trials"]]


def test_test_labels_cannot_change_the_search(prepared, result):
    flipped_y = prepared.y.copy()
    flipped_y[prepared.split.test] = 1 - flipped_y[prepared.split.test]
    again = tune(replace(prepared, y=flipped_y), FAST, trials=3, seeds=1)
    assert [t["val_pr_auc"] for t in again["trials"]] == [t["val_pr_auc"] for t in result["trials"]]


def test_trial_score_is_the_mean_over_seeds(prepared):
    two = tune(prepared, FAST, trials=1, seeds=2)["trials"][0]
    assert two["val_pr_auc"] == pytest.approx(np.mean(two["per_seed"]))
    assert len(two["per_seed"]) == 2 and two["per_seed"][0] != two["per_seed"][1]


def test_hidden_choices_parse_to_layer_widths():
    assert to_config(FAST, {"hidden": "256,64"}).hidden == (256, 64)
    assert all(to_config(FAST, {"hidden": h}).hidden for h in SPACE["hidden"][1])


def test_tune_command_writes_results(small_csv, tmp_path):
    out = tmp_path / "tune.json"
    completed = run_main("tune", "--data", str(small_csv), "--trials", "2", "--seeds", "1", "--epochs", "2",
                         "--hidden", "128", "--members", "1",
                        "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    saved = json.loads(out.read_text())
    assert len(saved["trials"]) == 2 and saved["split"] == "random"
    assert "train with: noshow train --hidden" in completed.stdout


def test_tune_with_settings_outside_the_space_is_a_user_error(small_csv, tmp_path):
    out = tmp_path / "tune.json"
    completed = run_main("tune", "--data", str(small_csv), "--trials", "2", "--batch-size", "64", "--out", str(out))
    assert_user_error(completed, "outside the search space")
    assert not out.exists()
