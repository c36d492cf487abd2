"""The twins are the same model: same start, same batches, same end."""

from __future__ import annotations

import numpy as np
import pytest

from noshow.nn.config import MLPConfig, dropout_levels
from noshow.stats.metrics import sigmoid64
from noshow.training import batch_order, fit, make_backend


@pytest.fixture(scope="module")
def problem(small_data):
    from noshow.data.prepare import prepare

    prepared = prepare(small_data, "random", 0, dtype="float64")
    return prepared


def _train_both(problem, config, with_val=False):
    X, y = problem.part("train")
    X_val, y_val = problem.part("val") if with_val else (None, None)
    out = {}
    for name in ("numpy", "torch"):
        backend = make_backend(name, X.shape[1], config)
        out[name] = (fit(backend, X, y, config, X_val, y_val), backend)
    return out


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_float64_weights_agree_to_1e_9_after_several_epochs(problem, optimizer):
    config = MLPConfig(dtype="float64", dropout=0.0, epochs=5, patience=0, optimizer=optimizer,
                       lr=0.01 if optimizer == "sgd" else 1e-3, batch_size=128)
    runs = _train_both(problem, config)
    numpy_w, torch_w = runs["numpy"][0].parameters, runs["torch"][0].parameters
    diff = max(np.abs(numpy_w[k] - torch_w[k]).max() for k in numpy_w)
    assert diff < 1e-9
    assert runs["numpy"][0].epochs_run == 5


def test_float64_focal_loss_twins_agree(problem):
    config = MLPConfig(dtype="float64", dropout=0.0, epochs=3, patience=0, loss="focal", batch_size=128)
    runs = _train_both(problem, config)
    diff = max(np.abs(runs["numpy"][0].parameters[k] - runs["torch"][0].parameters[k]).max()
               for k in runs["numpy"][0].parameters)
    assert diff < 1e-9


def test_float32_probabilities_agree_to_1e_4_on_held_out_rows(problem):
    # A smooth activation: with ReLU, a pre-activation that rounds to the other side of 0 in one twin
    # flips that sample's gradient, and Adam carries the difference on (seen: 7e-8 after 6 epochs,
    # 3e-4 after 7). Float64 ReLU runs are held to 1e-9 above.
    config = MLPConfig(dtype="float32", dropout=0.0, epochs=8, patience=0, batch_size=128, activation="tanh")
    runs = _train_both(problem, config)
    X_test, _ = problem.part("test")
    p_numpy = sigmoid64(runs["numpy"][1].predict_logits(X_test))
    p_torch = sigmoid64(runs["torch"][1].predict_logits(X_test))
    assert np.abs(p_numpy - p_torch).max() < 1e-4


def test_training_moves_the_weights(problem):
    config = MLPConfig(dtype="float64", dropout=0.0, epochs=2, patience=0)
    X, y = problem.part("train")
    backend = make_backend("numpy", X.shape[1], config)
    start = backend.get_parameters()
    result = fit(backend, X, y, config)
    assert max(np.abs(result.parameters[k] - start[k]).max() for k in start) > 1e-3


def test_both_twins_start_from_the_same_weights(problem):
    config = MLPConfig(dtype="float32")
    d = problem.features.width
    a, b = make_backend("numpy", d, config).get_parameters(), make_backend("torch", d, config).get_parameters()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_batch_order_is_a_seeded_permutation():
    first = batch_order(1000, 300, np.random.default_rng(5))
    again = batch_order(1000, 300, np.random.default_rng(5))
    assert [len(b) for b in first] == [300, 300, 300, 100]
    assert np.array_equal(np.sort(np.concatenate(first)), np.arange(1000))
    assert all(np.array_equal(x, y) for x, y in zip(first, again))


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_same_seed_reproduces_weights_bit_for_bit(problem, name):
    config = MLPConfig(dtype="float32", dropout=0.2, epochs=3, patience=0)
    X, y = problem.part("train")
    runs = [fit(make_backend(name, X.width, config), X, y, config).parameters for _ in range(2)]
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_early_stopping_restores_the_best_epoch(problem):
    config = MLPConfig(dtype="float32", epochs=12, patience=2, lr=0.05)
    X, y = problem.part("train")
    X_val, y_val = problem.part("val")
    backend = make_backend("numpy", X.shape[1], config)
    result = fit(backend, X, y, config, X_val, y_val)
    scores = [h.val_pr_auc for h in result.history]
    assert result.best_epoch == int(np.argmax(scores)) + 1
    assert result.epochs_run <= 12
    from sklearn.metrics import average_precision_score

    assert average_precision_score(y_val, backend.predict_logits(X_val)) == pytest.approx(max(scores))


def _train_ensembles(problem, config):
    from noshow.training import fit_ensemble, make_model

    X, y = problem.part("train")
    X_val, y_val = problem.part("val")
    models = {name: make_model(name, X.shape[1], config) for name in ("numpy", "torch")}
    return {name: (fit_ensemble(m, X, y, config, X_val, y_val), m) for name, m in models.items()}


def test_ensemble_twins_agree_member_by_member_in_float64(problem):
    config = MLPConfig(dtype="float64", dropout=0.0, epochs=3, patience=0, members=2, batch_size=128)
    runs = _train_ensembles(problem, config)
    numpy_w, torch_w = runs["numpy"][0].parameters, runs["torch"][0].parameters
    assert sorted(numpy_w) == sorted(torch_w) and len(numpy_w) == 12
    assert max(np.abs(numpy_w[k] - torch_w[k]).max() for k in numpy_w) < 1e-9
    # The members start from different seeds, so they are different networks.
    assert np.abs(numpy_w["members.0.output.weight"] - numpy_w["members.1.output.weight"]).max() > 1e-3


def test_ensemble_logit_is_the_mean_of_its_members_logits(problem):
    config = MLPConfig(dtype="float64", epochs=2, patience=0, members=3)
    _, model = _train_ensembles(problem, config)["numpy"]
    X_test, _ = problem.part("test")
    members = np.stack([m.predict_logits(X_test) for m in model.members])
    np.testing.assert_allclose(model.predict_logits(X_test), members.mean(axis=0), rtol=0, atol=1e-12)
    assert members.std(axis=0).mean() > 1e-3


def test_one_member_model_is_the_single_network(problem):
    config = MLPConfig(dtype="float64", epochs=2, patience=0, members=1)
    result, _ = _train_ensembles(problem, config)["numpy"]
    X, y = problem.part("train")
    X_val, y_val = problem.part("val")
    single = fit(make_backend("numpy", X.shape[1], config), X, y, config, X_val, y_val).parameters
    assert all(np.array_equal(result.parameters[f"members.0.{k}"], v) for k, v in single.items())


def test_torch_dropout_matches_the_numpy_layer_in_distribution_and_gradient():
    import torch

    from noshow.nn.torch_mlp import Dropout

    torch.manual_seed(0)
    layer = Dropout(0.25)
    x = torch.ones((2000, 50), dtype=torch.float64, requires_grad=True)
    assert layer.eval()(x) is x
    out = layer.train()(x)
    assert abs((out == 0).double().mean().item() - 0.25) < 0.01
    assert abs(out.mean().item() - 1.0) < 0.02
    out.sum().backward()
    torch.testing.assert_close(x.grad, out.detach())  # the gradient is the mask, as in the NumPy layer
    assert set(out.unique().tolist()) == {0.0, dropout_levels(0.25)[1]}  # the NumPy layer's values


def test_torch_random_lanes_are_uniform_on_fifteen_bits():
    import torch

    from noshow.nn.config import DROPOUT_BITS
    from noshow.nn.torch_mlp import random_lanes

    torch.manual_seed(0)
    lanes = random_lanes((999, 257))  # 256,743 units: the last 64-bit word is cut short
    assert lanes.shape == (999, 257) and lanes.dtype == torch.int16
    assert lanes.min().item() == 0 and lanes.max().item() == 2**DROPOUT_BITS - 1
    # Every one of the 15 bits is set in half of the lanes (the top lane of a word included).
    shares = [((lanes >> b) & 1).double().mean().item() for b in range(DROPOUT_BITS)]
    assert all(abs(share - 0.5) < 0.005 for share in shares)  # 5 standard errors
