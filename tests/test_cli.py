"""The train and predict commands end to end, as a user runs them."""

from __future__ import annotations

import os
import stat

import numpy as np
import polars as pl
import pytest

from conftest import assert_user_error, run_main
from noshow.model import TrainedModel

FAST = ("--epochs", "3", "--quiet")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_train_then_predict_writes_scores_without_needing_labels(backend, small_csv, tmp_path):
    model = tmp_path / "m.npz"
    result = run_main("train", "--backend", backend, "--data", str(small_csv), "--out", str(model), *FAST)
    assert result.returncode == 0, result.stderr
    unlabeled = tmp_path / "tomorrow.csv"
    pl.read_csv(small_csv, infer_schema=False).drop("No-show", "true_probability").head(100).write_csv(unlabeled)
    out = tmp_path / "scores.csv"
    result = run_main("predict", "--model", str(model), "--data", str(unlabeled), "--out", str(out), "--backend", backend)
    assert result.returncode == 0, result.stderr
    scores = pl.read_csv(out)
    assert scores.columns == ["AppointmentID", "PatientId", "AppointmentDay", "no_show_probability", "rank_in_day",
                              "flagged", "reasons"]
    assert scores.height == 100
    threshold = TrainedModel.load(model).threshold
    assert (scores["flagged"] == (scores["no_show_probability"] >= threshold)).all()



def test_train_with_members_saves_every_member_and_reports_them(small_csv, tmp_path):
    model = tmp_path / "m.npz"
    result = run_main("train", "--data", str(small_csv), "--out", str(model), "--members", "3", "--epochs", "2",
                      "--hidden", "16")
    assert result.returncode == 0, result.stderr
    assert "3 network(s), 6 epochs in all" in result.stdout
    loaded = TrainedModel.load(model)
    assert loaded.config.members == 3 and len(loaded.metadata["training"]["best_epochs"]) == 3
    assert {name.split(".")[1] for name in loaded.parameters} == {"0", "1", "2"}

def test_train_progress_bar_shows_loss_and_validation_pr_auc(small_csv, tmp_path):
    result = run_main("train", "--data", str(small_csv), "--out", str(tmp_path / "m.npz"), "--epochs", "2",
                      "--hidden", "16", "--members", "1")
    assert result.returncode == 0, result.stderr
    assert "val_pr_auc=" in result.stderr and "loss=" in result.stderr


def test_train_without_data_uses_synthetic_data_and_says_so(tmp_path):
    model = tmp_path / "m.npz"
    result = run_main("train", "--out", str(model), "--epochs", "1", "--hidden", "16", "--members", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stderr
    assert TrainedModel.load(model).metadata["data"]["synthetic"] is True


def test_training_on_one_class_is_a_user_error_and_writes_no_model(small_csv, tmp_path):
    one_class = tmp_path / "one_class.csv"
    one_class.write_text(small_csv.read_text().replace(",Yes,", ",No,"))
    model = tmp_path / "m.npz"
    assert_user_error(run_main("train", "--data", str(one_class), "--out", str(model)), "only 0 'no-show' rows")
    assert not model.exists()
    assert list(tmp_path.iterdir()) == [one_class]


def test_bad_hyperparameter_is_a_user_error(small_csv, tmp_path):
    assert_user_error(run_main("train", "--data", str(small_csv), "--out", str(tmp_path / "m.npz"), "--dropout", "1.5"),
                      "dropout must be in [0, 1)")


def test_output_into_missing_folder_is_a_user_error(small_csv, tmp_path):
    assert_user_error(run_main("train", "--data", str(small_csv), "--out", str(tmp_path / "no" / "m.npz")),
                      "does not exist")


@pytest.mark.realdata
@pytest.mark.slow
def test_real_file_model_from_numpy_scores_identically_with_torch(real_data_path, real_data, tmp_path):
    model = tmp_path / "m.npz"
    result = run_main("train", "--backend", "numpy", "--data", str(real_data_path), "--out", str(model), "--members", "1",
                      *FAST)
    assert result.returncode == 0, result.stderr
    loaded = TrainedModel.load(model)
    assert loaded.metadata["data"]["rows"] == 110_527
    p_numpy = loaded.predict_proba(real_data, backend="numpy")
    p_torch = loaded.predict_proba(real_data, backend="torch")
    assert np.abs(p_numpy - p_torch).max() < 1e-5


def test_output_files_get_the_usual_permissions(tmp_path):
    from noshow.files import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.csv") as tmp:
            tmp.write_text("x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o644
