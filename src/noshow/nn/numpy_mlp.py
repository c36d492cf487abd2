"""The MLP from scratch in NumPy: layers, activations, losses and optimisers, no framework.

Every piece keeps its backward pass right beside its forward pass. Layers cache what their
backward needs during a training forward pass. Shapes: a batch ``X`` is (n, d_in); a Linear
weight is (d_out, d_in) as in ``torch.nn.Linear``, so ``forward`` computes ``X @ W.T + b``;
the network's output is a vector of n logits. Everything stays in the parameters' dtype (float32
by default, float64 on request). No Python loop runs over samples.

The optimisers follow ``torch.optim``'s update formulas operation for operation, which is what lets
the tests demand 1e-9 agreement with the PyTorch twin in float64.
"""

from __future__ import annotations

import numpy as np

from noshow.nn.config import LEAKY_SLOPE, MLPConfig, initial_parameters, parameter_names


# --------------------------------------------------------------------------------------------------
# Layers


class Linear:
    """Affine layer ``y = x @ W.T + b``; W is (d_out, d_in), b is (d_out,)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, input_grad: bool = True):
        self.params = {"weight": weight, "bias": bias}
        # The first layer's input is data: its gradient is never used, and costs a full matmul.
        self.input_grad = input_grad
        self.grads = {"weight": np.zeros_like(weight), "bias": np.zeros_like(bias)}
        self._x = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if train:
            self._x = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """(n, d_out) -> (n, d_in), or None without ``input_grad``; stores dL/dW (d_out, d_in)
        and dL/db (d_out,)."""
        np.matmul(grad_out.T, self._x, out=self.grads["weight"])
        np.sum(grad_out, axis=0, out=self.grads["bias"])
        return grad_out @ self.params["weight"] if self.input_grad else None


class Activation:
    """Element-wise nonlinearity; ``backward`` multiplies by the derivative at the cached input."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, name: str):
        self.name = name
        self._cache = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if self.name == "relu":
            out = np.maximum(x, 0)
            cache = x > 0
        elif self.name == "leaky_relu":
            out = np.where(x > 0, x, x * LEAKY_SLOPE)
            cache = x > 0
        elif self.name == "tanh":
            out = np.tanh(x)
            cache = out
        else:  # silu: x * sigmoid(x)
            s = sigmoid_activation(x)
            out = x * s
            cache = (x, s)
        if train:
            self._cache = cache
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        cache = self._cache
        if self.name == "relu":
            return grad_out * cache
        if self.name == "leaky_relu":
            return grad_out * np.where(cache, 1, LEAKY_SLOPE).astype(grad_out.dtype)
        if self.name == "tanh":
            return grad_out * (1 - cache * cache)
        x, s = cache
        return grad_out * (s * (1 + x * (1 - s)))


class Dropout:
    """Inverted dropout: zero a fraction ``p`` of units in training, scale the rest by 1/(1-p)."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, p: float, rng: np.random.Generator):
        self.p = p
        self.rng = rng
        self._mask = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if not train or self.p == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32) >= self.p
        self._mask = keep * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out if self._mask is None else grad_out * self._mask


# --------------------------------------------------------------------------------------------------
# Losses on logits (stable for any |z|; mean over the batch of sample_weight * per-sample loss)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow for large |z|, accurate relative to its value in both
    tails (the losses' gradients need that for confident predictions)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_activation(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) as (1 + tanh(x / 2)) / 2, for hidden units: it cannot overflow, and one
    vectorised tanh plus two in-place passes is 19x faster than :func:`sigmoid` (0.08 ms against
    1.5 ms for 512 x 256 float32; SiLU took 45% of an epoch before). Its error is absolute, one ulp
    of 1, which is all a hidden unit needs."""
    out = np.tanh(x * x.dtype.type(0.5))
    out += 1
    out *= x.dtype.type(0.5)
    return out


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): the stable log-sum-exp of (0, z)."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def bce_with_logits(z, y, pos_weight: float, sample_weight=None):
    """Binary cross-entropy on logits with a positive-class weight, and its gradient.

    Per sample: l = -[pw * y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z))]
              = (1 - y) * z + (1 + (pw - 1) * y) * softplus(-z),
    the form ``torch.nn.BCEWithLogitsLoss(pos_weight=pw)`` uses. Gradient dl/dz =
    (1 + (pw - 1) * y) * sigmoid(z) - pw * y.

    Returns (mean loss as float, dL/dz of shape (n,)).
    """
    scale = 1 + (pos_weight - 1) * y
    losses = (1 - y) * z + scale * softplus(-z)
    grad = scale * sigmoid(z) - pos_weight * y
    return _weighted_mean(losses, grad, sample_weight)


def focal_with_logits(z, y, pos_weight: float, gamma: float, sample_weight=None):
    """Focal loss (Lin et al. 2017) on logits: l = a_t * (1 - p_t)**gamma * CE.

    CE is the unweighted cross-entropy, p_t = exp(-CE) the probability of the true class and
    a_t = pos_weight for positives, 1 for negatives. With q = 1 - p_t the gradient is
    dl/dz = a_t * q**gamma * [(sigmoid(z) - y) - gamma * (2y - 1) * p_t * CE],
    which reduces to the cross-entropy gradient at gamma = 0.
    """
    ce = softplus(z) - y * z
    p_t = np.exp(-ce)
    q = -np.expm1(-ce)  # 1 - p_t without cancellation when p_t is near 1
    alpha = 1 + (pos_weight - 1) * y
    modulator = q**gamma
    losses = alpha * modulator * ce
    grad = alpha * modulator * ((sigmoid(z) - y) - gamma * (2 * y - 1) * p_t * ce)
    return _weighted_mean(losses, grad, sample_weight)


def _weighted_mean(losses, grad, sample_weight):
    n = losses.shape[0]
    if sample_weight is not None:
        losses = losses * sample_weight
        grad = grad * sample_weight
    return float(losses.sum() / n), grad / n


# --------------------------------------------------------------------------------------------------
# Optimisers; state is keyed by the parameter's full name, so no two layers can share it.


class SGD:
    """SGD with momentum and L2 weight decay, as ``torch.optim.SGD`` (dampening 0)."""

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            g = grads[name] + self.weight_decay * p if self.weight_decay else grads[name]
            if self.momentum:
                if name not in self.buffers:
                    self.buffers[name] = g.copy()
                else:
                    self.buffers[name] *= self.momentum
                    self.buffers[name] += g
                g = self.buffers[name]
            p -= self.lr * g


class Adam:
    """Adam (L2 weight decay) or, with ``decoupled=True``, AdamW, as in ``torch.optim``."""

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled: bool = False):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.decoupled = weight_decay, decoupled
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        bias1 = 1 - beta1**self.t
        bias2_sqrt = (1 - beta2**self.t) ** 0.5
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay and self.decoupled:
                p *= 1 - self.lr * self.weight_decay
            elif self.weight_decay:
                g = g + self.weight_decay * p
            m = self.m.setdefault(name, np.zeros_like(p))
            v = self.v.setdefault(name, np.zeros_like(p))
            m += (1 - beta1) * (g - m)  # torch's lerp_: m = m + (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * g * g
            denom = np.sqrt(v) / bias2_sqrt + self.eps
            p -= (self.lr / bias1) * (m / denom)


def make_optimizer(config: MLPConfig):
    """The NumPy optimiser named by ``config.optimizer``, at the base learning rate."""
    if config.optimizer == "sgd":
        return SGD(config.lr, config.momentum, config.weight_decay)
    return Adam(config.lr, weight_decay=config.weight_decay, decoupled=config.optimizer == "adamw")


# --------------------------------------------------------------------------------------------------
# The network


class NumpyMLP:
    """Linear -> activation -> dropout for each hidden layer, then a Linear to one logit.

    Parameters live in ``self.parameters`` under the names of
    :func:`noshow.nn.config.parameter_names` (the PyTorch twin's ``state_dict`` keys); the layers
    hold views of the same arrays, so optimisers update them in place.
    """

    def __init__(self, n_inputs: int, config: MLPConfig, parameters: dict[str, np.ndarray] | None = None):
        self.config = config
        self.n_inputs = n_inputs
        init = parameters if parameters is not None else initial_parameters(n_inputs, config)
        self.parameters = {name: np.array(init[name], dtype=config.np_dtype, copy=True)
                           for name in parameter_names(config)}
        self.dropout_rng = np.random.default_rng([config.seed, 1])
        self.layers = []
        self.linears: dict[str, Linear] = {}
        for i in range(len(config.hidden)):
            self._add_linear(f"hidden.{i}")
            self.layers.append(Activation(config.activation))
            if config.dropout > 0:
                self.layers.append(Dropout(config.dropout, self.dropout_rng))
        self._add_linear("output")

    def _add_linear(self, prefix: str) -> None:
        layer = Linear(self.parameters[f"{prefix}.weight"], self.parameters[f"{prefix}.bias"],
                       input_grad=bool(self.layers))
        self.linears[prefix] = layer
        self.layers.append(layer)

    @property
    def gradients(self) -> dict[str, np.ndarray]:
        return {f"{prefix}.{kind}": layer.grads[kind]
                for prefix, layer in self.linears.items() for kind in ("weight", "bias")}

    def forward(self, X: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits of shape (n,) for inputs of shape (n, n_inputs)."""
        h = X.astype(self.config.np_dtype, copy=False)
        for layer in self.layers:
            h = layer.forward(h, train)
        return h[:, 0]

    def backward(self, grad_logits: np.ndarray) -> None:
        """Back-propagate dL/dlogits (n,), filling every layer's gradients."""
        g = grad_logits[:, None]
        for layer in reversed(self.layers):
            g = layer.backward(g)
            if g is None:  # reached the first layer
                break

    def loss_and_gradients(self, X, y, pos_weight: float, sample_weight=None, train: bool = True) -> float:
        """Forward, loss and backward on one batch; returns the mean loss, fills ``gradients``."""
        z = self.forward(X, train=train)
        y = y.astype(z.dtype, copy=False)
        sw = None if sample_weight is None else sample_weight.astype(z.dtype, copy=False)
        if self.config.loss == "focal":
            loss, grad = focal_with_logits(z, y, pos_weight, self.config.focal_gamma, sw)
        else:
            loss, grad = bce_with_logits(z, y, pos_weight, sw)
        self.backward(grad.astype(z.dtype, copy=False))
        return loss
