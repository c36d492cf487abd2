"""The refit (`noshow train --refit`): after early stopping, each network is trained afresh on the
training + validation rows for its chosen epoch count; calibration and threshold stay those of the
first model on validation."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_user_error, run_main
from noshow.data.prepare import prepare
from noshow.model import TrainedModel
from noshow.nn.config import MLPConfig, member_config, split_members
from noshow.training import fit, make_backend
from noshow.training.train import train_model

# Small and float64 without dropout, so that the twins agree to 1e-9; a high learning rate and
# patience 2 so that the members stop early, at different epochs.
CONFIG = MLPConfig(hidden=(16, 8), dtype="float64", dropout=0.0, epochs=8, patience=2, lr=0.03,
                   batch_size=128, members=2)


@pytest.fixture(scope="module")
def prepared(small_data):
    return prepare(small_data, "time", 0, dtype="float64", hold_out_test=False)


@pytest.fixture(scope="module")
def trained(prepared):
    """backend -> (refitted model, its result), and the same model without the refit."""
    runs = {name: train_model(prepared, name, CONFIG, refit=True) for name in ("numpy", "torch")}
    runs["plain"] = train_model(prepared, "numpy", CONFIG)
    return runs


def test_a_refit_member_has_the_weights_of_a_fresh_member_trained_its_epochs_on_train_and_val(prepared, trained):
    model, result = trained["numpy"]
    X, y = prepared.part("train", "val")
    for k, (params, epochs) in enumerate(zip(split_members(model.parameters, CONFIG), result.best_epochs)):
        config = member_config(CONFIG, k)
        direct = fit(make_backend("numpy", X.width, config), X, y, config, epochs=epochs).parameters
        assert sorted(direct) == sorted(params)
        assert all(np.array_equal(direct[name], params[name]) for name in direct)


def test_the_model_file_records_the_refit(trained, prepared, tmp_path):
    model, result = trained["numpy"]
    training = TrainedModel.load(model.save(tmp_path / "refit.npz")).metadata["training"]
    assert training["refit"] is True
    assert training["refit_epochs"] == result.best_epochs
    assert training["refit_rows"] == len(prepared.split.train) + len(prepared.split.val)


def test_a_model_without_refit_records_none(trained):
    training = trained["plain"][0].metadata["training"]
    assert training["refit"] is False and "refit_epochs" not in training


def test_refit_twins_agree_to_1e_9_in_float64(trained):
    (numpy_model, numpy_result), (torch_model, torch_result) = trained["numpy"], trained["torch"]
    assert numpy_result.best_epochs == torch_result.best_epochs
    w_numpy, w_torch = numpy_model.parameters, torch_model.parameters
    assert sorted(w_numpy) == sorted(w_torch)
    assert max(np.abs(w_numpy[k] - w_torch[k]).max() for k in w_numpy) < 1e-9


def test_calibration_and_threshold_come_from_the_first_model_on_validation(trained):
    refitted, plain = trained["numpy"][0], trained["plain"][0]
    assert refitted.threshold == plain.threshold
    assert refitted.calibrator.to_dict() == plain.calibrator.to_dict()
    assert refitted.metadata["training"]["val_pr_auc"] == plain.metadata["training"]["val_pr_auc"]
    # ... while the weights are the refit's, not the first model's.
    assert max(np.abs(refitted.parameters[k] - plain.parameters[k]).max() for k in plain.parameters) > 1e-3


def test_the_refit_trains_on_the_early_stopping_epochs_and_no_more(trained):
    _, result = trained["numpy"]
    assert [r.epochs_run for r in result.refit.members] == result.best_epochs
    assert max(result.best_epochs) < CONFIG.epochs  # early stopping chose them
    assert all(r.history[-1].val_pr_auc is None for r in result.refit.members)  # no validation looked at


def test_fit_refuses_an_epoch_count_beyond_the_schedule(prepared):
    X, y = prepared.part("train")
    with pytest.raises(ValueError, match="1 to 8 epochs"):
        fit(make_backend("numpy", X.width, CONFIG), X, y, member_config(CONFIG, 0), epochs=9)


def test_train_refit_flag_writes_a_refitted_model(small_csv, tmp_path):
    out = tmp_path / "m.npz"
    run = run_main("train", "--data", str(small_csv), "--out", str(out), "--refit", "--split", "time",
                   "--hidden", "8", "--epochs", "2", "--members", "1")
    assert run.returncode == 0, run.stderr
    assert "refitted on training + validation rows" in run.stdout
    assert TrainedModel.load(out).metadata["training"]["refit_epochs"] == [2]


def test_refit_with_stream_is_a_user_error(small_csv, tmp_path):
    assert_user_error(run_main("train", "--data", str(small_csv), "--out", str(tmp_path / "m.npz"), "--stream",
                               "--refit"), "--refit")


def test_the_model_card_says_the_networks_were_refitted(trained):
    from noshow.clinic.card import model_card

    model, result = trained["numpy"]
    card = model_card(model, "refit")
    assert f"refitted on the training and validation rows for the epoch counts early stopping chose " \
           f"({', '.join(map(str, result.best_epochs))})" in card
    assert "refitted" not in model_card(trained["plain"][0], "plain")
