"""The PyTorch twin: the same MLP as an idiomatic ``torch.nn.Module`` trained with ``torch.optim``.

Parameter names (``hidden.0.weight`` ... ``output.bias``) and layouts ((out, in) weights) are those
of :func:`noshow.nn.config.parameter_names`, so the NumPy twin's weights load with
``load_state_dict`` unchanged and a model file serves either backend.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from noshow.nn.config import DROPOUT_BITS, LEAKY_SLOPE, MLPConfig, dropout_levels, initial_parameters, lr_factor

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def activation_module(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(LEAKY_SLOPE),
        "tanh": nn.Tanh(),
        "silu": nn.SiLU(),
    }[name]


def random_lanes(shape: tuple[int, ...], device=None) -> torch.Tensor:
    """``DROPOUT_BITS`` random bits per unit, int16 of ``shape``, from torch's default generator."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()
    return words.view(torch.int16)[:n].view(shape).bitwise_and_((1 << DROPOUT_BITS) - 1)


def dropout_mask(shape: tuple[int, ...], p: float, dtype: torch.dtype, device=None) -> torch.Tensor:
    """Inverted-dropout mask of ``shape`` by :func:`noshow.nn.config.dropout_levels`: 0 or its scale.

    Each unit gets 15 random bits, four units from one 64-bit word of ``random_``: torch's CPU
    generator makes one word as fast as one float, so this takes 0.14 ms for 512 x 256 units
    against 0.48 ms for ``rand_like`` and 1.4 ms for ``bernoulli_`` (torch 2.13, this project's 2-core
    machine). A 64-bit ``random_`` word has 63 random bits; the top lane's sign bit is the missing one,
    and the mask to 15 bits drops it.
    """
    lanes = random_lanes(shape, device)
    dropped, scale = dropout_levels(p)
    # Speed: bool -> float is a scalar loop in torch 2.13, uint8 -> float a vector one (7 against
    # 29 us for 512 x 256 units); a bool is one byte holding 0 or 1, so the view changes no value.
    return (lanes >= dropped).view(torch.uint8).to(dtype).mul_(scale)


class Dropout(nn.Module):
    """Inverted dropout: zero a fraction ``p`` of units in training, scale the rest by 1/(1-p).

    The NumPy twin's distribution (both twins draw their own masks from their own generators);
    the mask comes from :func:`dropout_mask`, because ``nn.Dropout`` samples with ``bernoulli_``,
    which on the CPU took 47% of a training epoch.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * dropout_mask(x.shape, self.p, x.dtype, x.device)


class TorchMLP(nn.Module):
    """Linear -> activation -> dropout per hidden layer, then Linear to one logit per row."""

    def __init__(self, n_inputs: int, config: MLPConfig):
        super().__init__()
        widths = [n_inputs, *config.hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = activation_module(config.activation)
        self.dropout = Dropout(config.dropout)
        self.output = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, n_inputs) -> logits (n,)."""
        for linear in self.hidden:
            x = self.dropout(self.activation(linear(x)))
        return self.output(x).squeeze(-1)

    def first_preactivation(self, dense: torch.Tensor, hot: torch.Tensor) -> torch.Tensor:
        """The first Linear's output (n, hidden[0]) for rows given compactly as an
        :class:`~noshow.nn.encoded.Encoded`'s parts (``dense`` (n, n_dense), one-hot column
        numbers ``hot`` (n, k), long), without forming the one-hot matrix."""
        first = self.hidden[0]
        a = dense @ first.weight[:, :dense.shape[1]].T + first.bias
        return a + first.weight.T[hot].sum(dim=1)

    def logits_from_first_preactivation(self, a1: torch.Tensor) -> torch.Tensor:
        """Logits (n,) from the first Linear's output (n, hidden[0]): the rest of :meth:`forward`."""
        x = self.dropout(self.activation(a1))
        for linear in self.hidden[1:]:
            x = self.dropout(self.activation(linear(x)))
        return self.output(x).squeeze(-1)


def focal_loss_with_logits(z, y, pos_weight: float, gamma: float, sample_weight=None):
    """Focal loss, mean over the batch; autograd supplies the gradient (see the NumPy twin)."""
    ce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    p_t = torch.exp(-ce)
    alpha = 1 + (pos_weight - 1) * y
    losses = alpha * (1 - p_t) ** gamma * ce
    if sample_weight is not None:
        losses = losses * sample_weight
    return losses.mean()


def loss_fn(config: MLPConfig, pos_weight: float):
    """A function (logits, y, sample_weight) -> mean loss, matching the NumPy twin's."""
    if config.loss == "focal":
        return lambda z, y, w: focal_loss_with_logits(z, y, pos_weight, config.focal_gamma, w)
    # A weight of 1 is no weight: leaving it out saves a few operators per batch.
    pw = None if pos_weight == 1 else torch.tensor(pos_weight, dtype=TORCH_DTYPES[config.dtype])

    def bce(z, y, w):
        return F.binary_cross_entropy_with_logits(z, y, weight=w, pos_weight=None if pw is None else pw.to(z.device))

    return bce


def make_optimizer(model: nn.Module, config: MLPConfig) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimiser of ``config``. Adam and AdamW run fused (one kernel per
    parameter instead of a dozen operators: 0.4 ms against 1.1 ms per step of the default network
    on this machine); their float64 results stay within 1e-15 of the per-parameter loop that the
    NumPy twin follows operation for operation, far inside the twins' 1e-9 test."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, foreach=True)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, config: MLPConfig):
    """LambdaLR over the shared :func:`lr_factor`, stepped once per epoch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(config, epoch))


def build(n_inputs: int, config: MLPConfig, parameters: dict[str, np.ndarray] | None = None,
          device: str = "cpu") -> TorchMLP:
    """A TorchMLP holding ``parameters`` (default: the shared initial weights) in config's dtype."""
    model = TorchMLP(n_inputs, config).to(dtype=TORCH_DTYPES[config.dtype])
    params = parameters if parameters is not None else initial_parameters(n_inputs, config)
    load_parameters(model, params)
    return model.to(device)


def load_parameters(model: TorchMLP, parameters: dict[str, np.ndarray]) -> None:
    dtype = next(model.parameters()).dtype
    state = {k: torch.as_tensor(np.asarray(v)).to(dtype) for k, v in parameters.items()}
    model.load_state_dict(state)


def parameters_of(model: TorchMLP) -> dict[str, np.ndarray]:
    """Copies of the parameters as NumPy arrays, keyed by state_dict name."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
