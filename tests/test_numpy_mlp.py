"""The from-scratch network, piece by piece, against PyTorch autograd and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noshow.nn import numpy_mlp as N
from noshow.nn import torch_mlp as T
from noshow.nn.config import ACTIVATIONS, MLPConfig, dropout_levels, initial_parameters, lr_factor


def _batch(n=32, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.3).astype(np.float64)
    w = rng.uniform(0.5, 2.0, n)
    return X, y, w


def _net(activation="relu", loss="bce", hidden=(5, 4), d=6):
    config = MLPConfig(hidden=hidden, activation=activation, dropout=0.0, loss=loss, dtype="float64", seed=3)
    return N.NumpyMLP(d, config), config


def _numeric_gradient(net, X, y, w, pos_weight, name, eps=1e-6):
    """Central finite differences of the mean loss w.r.t. every entry of parameter ``name``."""
    param = net.parameters[name]
    grad = np.zeros_like(param)
    for index in np.ndindex(param.shape):
        original = param[index]
        param[index] = original + eps
        up = net.loss_and_gradients(X, y, pos_weight, w, train=False)
        param[index] = original - eps
        down = net.loss_and_gradients(X, y, pos_weight, w, train=False)
        param[index] = original
        grad[index] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("loss", ["bce", "focal"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_gradient_matches_finite_differences(activation, loss):
    net, _ = _net(activation, loss)
    X, y, w = _batch()
    net.loss_and_gradients(X, y, 2.5, w)
    analytic = {k: v.copy() for k, v in net.gradients.items()}
    for name in net.parameters:
        numeric = _numeric_gradient(net, X, y, w, 2.5, name)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("loss", ["bce", "focal"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_gradient_matches_torch_autograd(activation, loss):
    net, config = _net(activation, loss)
    X, y, w = _batch()
    ours = net.loss_and_gradients(X, y, 2.5, w)
    model = T.build(6, config, net.parameters)
    torch_loss = T.loss_fn(config, 2.5)(model(torch.from_numpy(X)), torch.from_numpy(y), torch.from_numpy(w))
    torch_loss.backward()
    assert ours == pytest.approx(torch_loss.item(), rel=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(net.gradients[name], p.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


def test_bce_matches_torch_and_stays_finite_for_huge_logits():
    z = np.array([-800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    loss, grad = N.bce_with_logits(z, y, pos_weight=3.0)
    zt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0, dtype=torch.float64))(zt, torch.tensor(y))
    expected.backward()
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-12)


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    X, y, _ = _batch()
    z = X[:, 0] * 3
    focal_loss, focal_grad = N.focal_with_logits(z, y, 2.0, gamma=0.0)
    bce_loss, bce_grad = N.bce_with_logits(z, y, 2.0)
    assert focal_loss == pytest.approx(bce_loss, rel=1e-12)
    np.testing.assert_allclose(focal_grad, bce_grad, rtol=1e-10, atol=1e-15)


def test_focal_loss_down_weights_easy_examples():
    z, y = np.array([4.0, 0.1]), np.array([1.0, 1.0])  # confident-right vs uncertain
    ce = N.softplus(-z)
    focal, _ = N.focal_with_logits(z[:1], y[:1], 1.0, 2.0)
    hard, _ = N.focal_with_logits(z[1:], y[1:], 1.0, 2.0)
    assert focal / ce[0] < 0.001 < hard / ce[1]


def test_sigmoid_and_softplus_do_not_overflow():
    z = np.array([-1000.0, 0.0, 1000.0])
    with np.errstate(over="raise"):
        np.testing.assert_allclose(N.sigmoid(z), [0.0, 0.5, 1.0])
        np.testing.assert_allclose(N.softplus(z), [0.0, np.log(2.0), 1000.0])


def test_dropout_is_identity_in_evaluation_and_keeps_expectation_in_training():
    layer = N.Dropout(0.25, np.random.default_rng(0))
    x = np.ones((2000, 50))
    assert layer.forward(x, train=False) is x
    out = layer.forward(x, train=True)
    assert abs((out == 0).mean() - 0.25) < 0.01
    assert abs(out.mean() - 1.0) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), out)


def test_he_and_glorot_initialisation_have_their_scales():
    he = initial_parameters(400, MLPConfig(hidden=(300,), init="he", dtype="float64"))["hidden.0.weight"]
    glorot = initial_parameters(400, MLPConfig(hidden=(300,), init="glorot", dtype="float64"))["hidden.0.weight"]
    assert he.shape == (300, 400)
    assert he.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert np.abs(glorot).max() <= np.sqrt(6 / 700)
    assert glorot.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)


def test_float32_network_computes_in_float32():
    config = MLPConfig(hidden=(8,), dtype="float32", dropout=0.0)
    net = N.NumpyMLP(6, config)
    X, y, _ = _batch()
    assert net.forward(X).dtype == np.float32
    net.loss_and_gradients(X, y, 1.0)
    assert all(g.dtype == np.float32 for g in net.gradients.values())


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizer_steps_match_torch_optim(optimizer):
    config = MLPConfig(hidden=(5,), optimizer=optimizer, lr=0.05, weight_decay=0.01, dtype="float64", dropout=0.0)
    net = N.NumpyMLP(6, config)
    model = T.build(6, config, net.parameters)
    ours, theirs = N.make_optimizer(config), T.make_optimizer(model, config)
    X, y, w = _batch()
    for _ in range(5):
        net.loss_and_gradients(X, y, 1.5, w)
        ours.step(net.parameters, net.gradients)
        theirs.zero_grad()
        T.loss_fn(config, 1.5)(model(torch.from_numpy(X)), torch.from_numpy(y), torch.from_numpy(w)).backward()
        theirs.step()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(net.parameters[name], p.detach().numpy(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizer_step_on_the_flat_network_equals_the_step_per_parameter_bit_for_bit(optimizer):
    config = MLPConfig(hidden=(5, 4), optimizer=optimizer, lr=0.05, weight_decay=0.01, dropout=0.0)
    flat, separate = N.NumpyMLP(6, config), N.NumpyMLP(6, config)
    ours, theirs = N.make_optimizer(config), N.make_optimizer(config)
    X, y, w = _batch()
    for _ in range(4):
        for net in (flat, separate):
            net.loss_and_gradients(X, y, 1.5, w)
        ours.step({"network": flat.flat_parameters}, {"network": flat.flat_gradients})
        theirs.step(separate.parameters, separate.gradients)
    for name, p in separate.parameters.items():
        np.testing.assert_array_equal(flat.parameters[name], p)


def test_parameters_gradients_and_layers_share_the_flat_arrays():
    net, _ = _net()
    X, y, w = _batch()
    net.loss_and_gradients(X, y, 1.0, w)
    assert np.array_equal(np.concatenate([g.ravel() for g in net.gradients.values()]), net.flat_gradients)
    assert net.flat_gradients.any()
    net.flat_parameters[:] = 0.0
    assert all(not p.any() for p in net.parameters.values())
    assert not net.linears["output"].parameters["weight"].any()


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_dropout_mask_is_zero_or_the_shared_scale_and_drops_the_shared_share(p):
    dropped, scale = dropout_levels(p)
    layer = N.Dropout(p, np.random.default_rng(0))
    out = layer.forward(np.ones((1000, 1000), dtype=np.float32), train=True)
    assert set(np.unique(out).tolist()) == {0.0, np.float32(scale)}
    share = dropped / 2**15
    assert abs((out == 0).mean() - share) < 4 * np.sqrt(share * (1 - share) / out.size)


def test_cosine_schedule_runs_from_base_rate_to_five_percent():
    config = MLPConfig(schedule="cosine", epochs=11)
    assert lr_factor(config, 0) == pytest.approx(1.0)
    assert lr_factor(config, 10) == pytest.approx(0.05)
    assert all(lr_factor(config, e) > lr_factor(config, e + 1) for e in range(10))
    assert lr_factor(MLPConfig(schedule="step"), 10) == 0.5


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_check_finds_backward_equal_to_finite_differences(activation):
    config = MLPConfig(hidden=(5, 4), activation=activation, dropout=0.0, dtype="float64", members=1)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, 12).astype(np.float64)
    assert N.gradient_check(N.NumpyMLP(3, config), X, y) < 1e-5  # central differences: ~eps² + rounding/eps


def test_gradient_check_catches_a_wrong_backward():
    config = MLPConfig(hidden=(4,), activation="tanh", dropout=0.0, dtype="float64", members=1)
    network = N.NumpyMLP(3, config)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10).astype(np.float64)
    network.layers[1].backward = lambda grad_out: grad_out  # forgets tanh's derivative
    assert N.gradient_check(network, X, y) > 1e-3


def test_activations_are_one_registry_of_classes_named_as_the_config_names_them():
    assert set(N.ACTIVATIONS) == set(ACTIVATIONS)
    first, second = N.ACTIVATIONS["relu"](), N.ACTIVATIONS["relu"]()
    first.parameters["x"] = np.zeros(1)
    assert second.parameters == {}  # no state shared between instances
