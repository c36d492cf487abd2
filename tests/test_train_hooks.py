"""The training loop's hooks (:class:`noshow.nn.twins.TrainingHooks`): the contract through
which data-parallel training adds its gradient all-reduce, its loss factors and its processes'
dropout masks. Oracle: plain SGD, where halving every step's gradient is halving the learning rate,
bit for bit (both are exact scalings by a power of two)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from noshow.nn.config import MLPConfig
from noshow.nn.twins import TrainingHooks, make_backend
from noshow.training.loop import fit
from replay import max_difference

SGD = MLPConfig(hidden=(8,), dropout=0.0, optimizer="sgd", lr=0.05, weight_decay=0.0, epochs=2, patience=0,
                batch_size=32, members=1, dtype="float64")


class Halved(TrainingHooks):
    """Every step's gradient halved: through the NumPy twin's buffer, or the PyTorch twin's loss."""

    def after_backward(self, step, gradients):
        gradients *= 0.5

    def loss_factor(self, step):
        return 0.5


class Stream(TrainingHooks):
    def __init__(self, stream: int):
        self.stream = stream

    def dropout_stream(self):
        return self.stream


def data(n: int = 300, d: int = 5):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    return X, (X[:, 0] + rng.normal(size=n) > 0).astype(np.float64)


def trained(backend: str, config: MLPConfig, hooks: TrainingHooks | None = None) -> dict[str, np.ndarray]:
    X, y = data()
    net = make_backend(backend, X.shape[1], config)
    fit(net, X, y, config, **({} if hooks is None else {"hooks": hooks}))
    return net.get_parameters()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_hook_that_halves_each_steps_gradient_trains_as_half_the_learning_rate(backend):
    halved = trained(backend, SGD, Halved())
    assert max_difference(halved, trained(backend, replace(SGD, lr=SGD.lr / 2))) < 1e-15
    assert max_difference(halved, trained(backend, SGD)) > 1e-4  # the hook did change training


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_dropout_stream_zero_keeps_the_members_masks_and_another_draws_its_own(backend):
    config = replace(SGD, dropout=0.3)
    own = trained(backend, config)
    assert max_difference(trained(backend, config, Stream(0)), own) == 0.0
    assert max_difference(trained(backend, config, Stream(1)), own) > 1e-4
