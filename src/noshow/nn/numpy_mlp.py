"""The MLP from scratch in NumPy: layers, activations, losses and optimisers, no framework.

One training step on a batch X (n, d) with labels y (n,), for hidden layers l = 1..L, written with
the names used below (``W`` is a Linear's ``parameters["weight"]``, (d_out, d_in); ``b`` its bias):

    forward     h_0 = X
                a_l = h_{l-1} @ W_l.T + b_l            Linear.forward
                h_l = dropout(f(a_l))                  Activation.forward, Dropout.forward
                z   = h_L @ W_out.T + b_out            the logits, (n,)
    loss        L = mean_i w_i · ℓ(z_i, y_i)           bce_with_logits: ℓ = pw·y·softplus(-z) + (1-y)·softplus(z)
    backward    g_z = dL/dz = w · (σ(z)·(pw·y + 1 - y) - pw·y) / n
                g_h = g_a @ W                          Linear.backward (not for the first layer)
                dL/dW = g_a.T @ h_prev,  dL/db = sum_i g_a    (overwritten each batch)
                g_a = g_h · mask · f'(a)               Dropout.backward, Activation.backward
    update      W -= lr · adam(dL/dW)                  Adam.step (AdamW: W *= 1 - lr·wd first)

Every piece keeps its backward pass right beside its forward pass, and each layer's gradients are
overwritten by each backward pass, never accumulated: one batch gives one gradient, so there is no
``zero_grad`` to forget (PyTorch accumulates, which is why its loop calls it). Layers cache what
backward needs during a training forward pass. Everything stays in the parameters' dtype (float32
by default, float64 on request). No Python loop runs over samples.

The optimisers follow ``torch.optim``'s update formulas operation for operation, which is what lets
the tests demand 1e-9 agreement with the PyTorch twin in float64; :func:`gradient_check` compares
the backward pass with central finite differences.
"""

from __future__ import annotations

import math

import numpy as np

from noshow.nn.config import LEAKY_SLOPE, MLPConfig, dropout_levels, initial_parameters, parameter_names

# --------------------------------------------------------------------------------------------------
# Layers


class Linear:
    """Affine layer ``y = x @ W.T + b``; W is (d_out, d_in), b is (d_out,).

    ``gradients`` (optional) are the arrays backward writes dL/dW and dL/db into, shaped like W and
    b; by default the layer makes its own."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, input_grad: bool = True,
                 gradients: dict[str, np.ndarray] | None = None):
        self.parameters = {"weight": weight, "bias": bias}
        # Speed: the first layer's input is data, so its gradient is never used; skipping it saves
        # a full matmul per batch (14-17% of an epoch).
        self.input_grad = input_grad
        self.gradients = gradients or {"weight": np.zeros_like(weight), "bias": np.zeros_like(bias)}
        self._x = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if train:
            self._x = x
        out = x @ self.parameters["weight"].T
        out += self.parameters["bias"]  # Speed: in place, no second (n, d_out) array
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """(n, d_out) -> (n, d_in), or None without ``input_grad``. Overwrites (does not add to)
        dL/dW (d_out, d_in) and dL/db (d_out,): one batch, one gradient, no zeroing step needed."""
        np.matmul(grad_out.T, self._x, out=self.gradients["weight"])
        np.sum(grad_out, axis=0, out=self.gradients["bias"])
        return grad_out @ self.parameters["weight"] if self.input_grad else None


class Activation:
    """An element-wise nonlinearity: ``forward`` caches what ``backward`` needs, and ``backward``
    multiplies the incoming gradient by the derivative there. No parameters."""

    name = ""

    def __init__(self):
        self.parameters: dict[str, np.ndarray] = {}
        self.gradients: dict[str, np.ndarray] = {}
        self._cache = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        out, cache = self._forward(x)
        if train:
            self._cache = cache
        return out

    def _forward(self, x):  # -> (output, cache)
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ReLU(Activation):
    """max(x, 0); derivative 1 where x > 0, else 0."""

    name = "relu"

    def _forward(self, x):
        # Speed: x times its 0/1 mask, not np.maximum(x, 0), which is 2x slower on float32 here
        # (40 against 4 + 22 us for 512 x 256). A negative x gives -0.0 instead of 0.0; nothing
        # downstream can tell them apart (products and sums with them are the same). Only an input
        # of -inf differs: NaN instead of 0, from a network that has diverged already.
        positive = x > 0
        return x * positive, positive

    def backward(self, grad_out):
        return grad_out * self._cache


class LeakyReLU(Activation):
    """x where x > 0, else 0.01·x (torch's default slope); derivative 1 or 0.01."""

    name = "leaky_relu"

    def _forward(self, x):
        return np.where(x > 0, x, x * LEAKY_SLOPE), x > 0

    def backward(self, grad_out):
        return grad_out * np.where(self._cache, 1, LEAKY_SLOPE).astype(grad_out.dtype)


class Tanh(Activation):
    """tanh(x); derivative 1 - tanh(x)², from the cached output."""

    name = "tanh"

    def _forward(self, x):
        out = np.tanh(x)
        return out, out

    def backward(self, grad_out):
        return grad_out * (1 - self._cache * self._cache)


class SiLU(Activation):
    """x·σ(x); derivative σ(x)·(1 + x·(1 - σ(x)))."""

    name = "silu"

    def _forward(self, x):
        s = sigmoid_activation(x)
        return x * s, (x, s)

    def backward(self, grad_out):
        x, s = self._cache
        return grad_out * (s * (1 + x * (1 - s)))


ACTIVATIONS = {cls.name: cls for cls in (ReLU, LeakyReLU, Tanh, SiLU)}  # the registry, by config name


class Dropout:
    """Inverted dropout: zero a fraction ``p`` of units in training, scale the rest so that the
    expected output is the input.

    The rule is :func:`noshow.nn.config.dropout_levels`, which the PyTorch twin follows too (each
    twin draws from its own generator), so the two twins' masks have one distribution: a unit is
    kept where its 15 random bits read at least ``dropped`` = round(p · 2**15)."""

    def __init__(self, p: float, rng: np.random.Generator):
        self.p = p
        self.rng = rng
        self.parameters: dict[str, np.ndarray] = {}
        self.gradients: dict[str, np.ndarray] = {}
        self._mask = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if not train:  # prediction writes nothing, so one network can serve many threads
            return x
        if self.p == 0:
            self._mask = None
            return x
        dropped, scale = dropout_levels(self.p)
        # Speed: 16 random bits per unit, four units per 64-bit word of the generator, 3.7x faster
        # than a float32 uniform per unit (0.10 against 0.37 ms for 512 x 256 units). A lane of
        # 16 bits is >= 2·dropped exactly when its top 15 bits are >= dropped: the twins' rule.
        words = self.rng.bit_generator.random_raw((x.size + 3) // 4)
        keep = words.view(np.uint16)[: x.size].reshape(x.shape) >= 2 * dropped
        self._mask = keep * x.dtype.type(scale)
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

    def step(self, parameters: dict[str, np.ndarray], gradients: dict[str, np.ndarray]) -> None:
        for name, p in parameters.items():
            g = gradients[name] + self.weight_decay * p if self.weight_decay else gradients[name]
            if self.momentum:
                if name not in self.buffers:
                    self.buffers[name] = g.copy()
                else:
                    self.buffers[name] *= self.momentum
                    self.buffers[name] += g
                g = self.buffers[name]
            p -= self.lr * g


class Adam:
    """Adam (L2 weight decay) or, with ``decoupled=True``, AdamW, as in ``torch.optim``.

    Per parameter p with gradient g, at step t (torch's order of operations):
        m ← m + (1 - β1)(g - m);   v ← β2·v + (1 - β2)·g·g
        p ← p - (lr / (1 - β1^t)) · m / (√v / √(1 - β2^t) + ε)
    Speed: every operation writes into ``m``, ``v`` or one scratch array per parameter (no
    temporary arrays), the same arithmetic as the one-line formulas, bit for bit."""

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled: bool = False):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.decoupled = weight_decay, decoupled
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.scratch: dict[str, np.ndarray] = {}

    def step(self, parameters: dict[str, np.ndarray], gradients: dict[str, np.ndarray]) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        bias1 = 1 - beta1**self.t
        bias2_sqrt = (1 - beta2**self.t) ** 0.5
        for name, p in parameters.items():
            g = gradients[name]
            if self.weight_decay and self.decoupled:
                p *= 1 - self.lr * self.weight_decay
            elif self.weight_decay:
                g = g + self.weight_decay * p
            if name not in self.m:
                self.m[name], self.v[name], self.scratch[name] = (np.zeros_like(p) for _ in range(3))
            m, v, tmp = self.m[name], self.v[name], self.scratch[name]
            np.subtract(g, m, out=tmp)  # torch's lerp_: m = m + (1 - beta1) * (g - m)
            tmp *= 1 - beta1
            m += tmp
            v *= beta2
            np.multiply(g, 1 - beta2, out=tmp)  # v += (1 - beta2) * g * g
            tmp *= g
            v += tmp
            np.sqrt(v, out=tmp)  # denominator: sqrt(v) / bias2_sqrt + eps
            tmp /= bias2_sqrt
            tmp += self.eps
            np.divide(m, tmp, out=tmp)  # p -= (lr / bias1) * (m / denominator)
            tmp *= self.lr / bias1
            p -= tmp


def make_optimizer(config: MLPConfig):
    """The NumPy optimiser named by ``config.optimizer``, at the base learning rate."""
    if config.optimizer == "sgd":
        return SGD(config.lr, config.momentum, config.weight_decay)
    return Adam(config.lr, weight_decay=config.weight_decay, decoupled=config.optimizer == "adamw")


# --------------------------------------------------------------------------------------------------
# The network


class NumpyMLP:
    """Linear -> activation -> dropout for each hidden layer, then a Linear to one logit.

    Parameters live in ``self.parameters`` and gradients in ``self.gradients``, under the names of
    :func:`noshow.nn.config.parameter_names` (the PyTorch twin's ``state_dict`` keys). Each is a
    view of one flat array, ``flat_parameters`` or ``flat_gradients``; the layers hold the same
    views, so an optimiser's in-place update is the layers' new weights.
    """

    def __init__(self, n_inputs: int, config: MLPConfig, parameters: dict[str, np.ndarray] | None = None):
        self.config = config
        self.n_inputs = n_inputs
        init = parameters if parameters is not None else initial_parameters(n_inputs, config)
        names = parameter_names(config)
        # Speed: one flat array behind all parameters (and one behind all gradients) lets the
        # optimiser update the whole network in a dozen passes, not a dozen per array (with Adam's
        # in-place update, 0.21 -> 0.09 ms a step), and data-parallel training all-reduce every
        # gradient in one call.
        self.flat_parameters = np.concatenate([np.asarray(init[n], dtype=config.np_dtype).ravel() for n in names])
        self.flat_gradients = np.zeros_like(self.flat_parameters)
        shapes = [np.shape(init[n]) for n in names]
        self.parameters = dict(zip(names, _views(self.flat_parameters, shapes)))
        self.gradients = dict(zip(names, _views(self.flat_gradients, shapes)))
        self.dropout_rng = np.random.default_rng([config.seed, 1])
        self.layers = []
        self.linears: dict[str, Linear] = {}
        for i in range(len(config.hidden)):
            self._add_linear(f"hidden.{i}")
            self.layers.append(ACTIVATIONS[config.activation]())
            if config.dropout > 0:
                self.layers.append(Dropout(config.dropout, self.dropout_rng))
        self._add_linear("output")

    def _add_linear(self, prefix: str) -> None:
        weight, bias = f"{prefix}.weight", f"{prefix}.bias"
        layer = Linear(self.parameters[weight], self.parameters[bias], input_grad=bool(self.layers),
                       gradients={"weight": self.gradients[weight], "bias": self.gradients[bias]})
        self.linears[prefix] = layer
        self.layers.append(layer)

    def forward(self, X: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits of shape (n,) for inputs of shape (n, n_inputs)."""
        h = X.astype(self.config.np_dtype, copy=False)
        for layer in self.layers:
            h = layer.forward(h, train)
        return h[:, 0]

    def first_preactivation(self, dense: np.ndarray, hot: np.ndarray) -> np.ndarray:
        """a_1 = X @ W_1.T + b_1, shape (n, hidden[0]), of rows given compactly as an
        :class:`~noshow.nn.encoded.Encoded`'s parts, without forming X: ``dense`` (n, n_dense)
        times the first n_dense weight columns, plus, for each one-hot code in ``hot`` (n, k), the
        weight column of its 1 (X is 0 elsewhere)."""
        W, b = self.parameters["hidden.0.weight"], self.parameters["hidden.0.bias"]
        a = dense.astype(self.config.np_dtype, copy=False) @ W[:, :dense.shape[1]].T
        columns = np.ascontiguousarray(W.T)  # row j: the weights of input column j, contiguous to gather
        for codes in hot.T:
            a += columns[codes]
        a += b
        return a

    def logits_from_first_preactivation(self, a1: np.ndarray) -> np.ndarray:
        """Logits (n,) from the first hidden layer's pre-activation (n, hidden[0]): the rest of
        :meth:`forward` (prediction, no dropout). Occlusion reasons change a row's first layer by
        a few columns' weights and recompute only these layers."""
        h = a1
        for layer in self.layers[1:]:
            h = layer.forward(h, False)
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


def _views(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Consecutive views of ``flat`` with the given shapes (together they cover it)."""
    ends = np.cumsum([math.prod(shape) for shape in shapes])
    return [flat[end - math.prod(shape):end].reshape(shape) for shape, end in zip(shapes, ends)]


def gradient_check(network: "NumpyMLP", X: np.ndarray, y: np.ndarray, eps: float = 1e-6,
                   pos_weight: float = 1.0) -> float:
    """The largest relative error between the backward pass's gradients and central finite
    differences, (L(θ + ε) - L(θ - ε)) / 2ε, over every parameter entry. The network must have
    dropout off (its loss must be a deterministic function of the parameters) and should be float64:
    float32 cannot resolve ε."""
    if network.config.dropout:
        raise ValueError("gradient_check needs a network without dropout")
    network.loss_and_gradients(X, y, pos_weight)
    analytic = {name: g.copy() for name, g in network.gradients.items()}
    worst = 0.0
    for name, p in network.parameters.items():
        for index in np.ndindex(p.shape):
            saved = p[index]
            p[index] = saved + eps
            up = network.loss_and_gradients(X, y, pos_weight)
            p[index] = saved - eps
            down = network.loss_and_gradients(X, y, pos_weight)
            p[index] = saved
            numeric = (up - down) / (2 * eps)
            error = abs(numeric - analytic[name][index]) / max(1e-8, abs(numeric) + abs(analytic[name][index]))
            worst = max(worst, float(error))
    network.loss_and_gradients(X, y, pos_weight)  # leave the true gradients in place
    return worst
