"""Hyperparameters shared by both twins, the learning-rate schedule, and the initial weights.

Both networks are built from one :class:`MLPConfig`, follow one :func:`lr_factor` schedule and start
from the same :func:`initial_parameters`, so any difference between them is a bug.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "silu")
LOSSES = ("bce", "focal")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")
INITS = ("auto", "he", "glorot")
DTYPES = ("float32", "float64")
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default
DROPOUT_BITS = 15  # random bits behind each dropout decision: the drop probability in steps of 2**-15


def dropout_levels(p: float) -> tuple[int, float]:
    """Both twins' dropout rule: a unit whose ``DROPOUT_BITS`` random bits read below ``dropped`` =
    round(p · 2**15) is zeroed, and the others are scaled by 2**15 / (2**15 - dropped), so the
    expected output equals the input exactly; returns (dropped, scale). The drop probability is
    p to within 2**-16 (0.29999 for 0.3). Whole random words cut into 15-bit lanes are 3-4x cheaper
    than a uniform float per unit, in NumPy and in PyTorch alike."""
    levels = 1 << DROPOUT_BITS
    dropped = round(p * levels)
    return dropped, levels / (levels - dropped)


# The settings with a fixed set of values, for validation and for the command line's choices.
CHOICES = {"activation": ACTIVATIONS, "loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
           "init": INITS, "dtype": DTYPES}
# One line of help per setting where its name is not enough (the command line shows them).
HELP = {
    "hidden": "hidden widths, e.g. 64,32",
    "pos_weight": "positive-class loss weight, or 'balanced' (n_negative / n_positive)",
    "focal_gamma": "focusing parameter of loss=focal",
    "weight_decay": "L2 for sgd and adam, decoupled for adamw",
    "patience": "epochs without a better validation PR AUC before stopping; 0 disables early stopping",
    "members": "networks trained from different seeds whose logits are averaged",
    "seed": "initial weights, batch order, dropout",
}


@dataclass
class MLPConfig:
    """Architecture and training settings of the MLP (both backends).

    ``pos_weight`` multiplies the loss of positive (no-show) samples: a number, or ``"balanced"``
    for n_negative / n_positive of the training labels. ``focal_gamma`` is used by ``loss="focal"``.
    ``weight_decay`` is L2 added to the gradient for ``sgd`` and ``adam`` and decoupled for
    ``adamw`` (as in ``torch.optim``). ``patience`` counts epochs without a better validation
    PR AUC before stopping; ``0`` disables early stopping.
    """

    # Defaults measured on the real file (random split, validation PR AUC decides; see README).
    hidden: tuple[int, ...] = (256, 128)
    activation: str = "relu"
    dropout: float = 0.3
    init: str = "auto"
    loss: str = "bce"
    # 1.0: the imbalance is handled by the validation-chosen threshold; "balanced" ranked worse.
    pos_weight: float | str = 1.0
    focal_gamma: float = 2.0
    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 1e-3
    schedule: str = "cosine"
    epochs: int = 40
    batch_size: int = 512
    patience: int = 8
    # The model averages the logits of this many networks, member k trained from seed
    # seed + MEMBER_SEED_STRIDE * k. Averaging seeds was the strongest lever measured; 3 is the most
    # that keeps `noshow compare` under 2 minutes on a 2-core machine (see README).
    members: int = 3
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError("hidden must list at least one positive layer width")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1 or self.members < 1 or self.patience < 0:
            raise ValueError("lr, epochs, batch_size and members must be positive and patience non-negative")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, not {self.lr}")
        for name in ("weight_decay", "momentum", "focal_gamma"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite non-negative number, not {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed}")
        if self.pos_weight != "balanced" and not (math.isfinite(float(self.pos_weight)) and float(self.pos_weight) > 0):
            raise ValueError(f"pos_weight must be positive or 'balanced', not {self.pos_weight!r}")

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "MLPConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def resolve_pos_weight(config: MLPConfig, y: np.ndarray, total=None) -> float:
    """The positive-class loss weight: ``config.pos_weight``, or n_neg / n_pos for "balanced".

    ``total(rows, positives)`` turns this process's counts of ``y`` into the counts of all the
    training rows (data-parallel training sums them over processes); None: ``y`` is all of them.
    """
    if config.pos_weight != "balanced":
        return float(config.pos_weight)
    rows, positives = len(y), float(np.sum(y == 1))
    if total is not None:
        rows, positives = total(rows, positives)
    return (rows - positives) / max(positives, 1.0)


def lr_factor(config: MLPConfig, epoch: int) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based), shared by both twins."""
    if config.schedule == "cosine":
        # Decays to 5% of the base rate at the last epoch, never to 0 (a wasted final epoch).
        floor = 0.05
        progress = epoch / max(config.epochs - 1, 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if config.schedule == "step":
        return 0.5 ** (epoch // 10)
    return 1.0


def layer_sizes(n_inputs: int, config: MLPConfig) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each Linear layer, the output layer (width 1) last."""
    widths = [n_inputs, *config.hidden, 1]
    return list(zip(widths[:-1], widths[1:]))


def parameter_names(config: MLPConfig) -> list[str]:
    """Names of the parameters, shared by both twins and the model file (torch's state_dict keys)."""
    names = []
    for i in range(len(config.hidden)):
        names += [f"hidden.{i}.weight", f"hidden.{i}.bias"]
    return names + ["output.weight", "output.bias"]


MEMBER_SEED_STRIDE = 1000


def member_config(config: MLPConfig, k: int) -> MLPConfig:
    """The configuration of ensemble member ``k``: one network with its own seed (member 0 keeps
    ``config.seed``, so a one-member model is exactly the single network)."""
    return replace(config, seed=config.seed + MEMBER_SEED_STRIDE * k, members=1)


def member_prefix(k: int) -> str:
    """Prefix of member ``k``'s parameter names in a model (``torch.nn.ModuleList`` style)."""
    return f"members.{k}."


def model_parameter_names(config: MLPConfig) -> list[str]:
    """Names of all of a model's parameters: each member's :func:`parameter_names`, prefixed."""
    return [member_prefix(k) + name for k in range(config.members) for name in parameter_names(config)]


def join_members(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One flat parameter dict from the members' dicts (the model file's layout)."""
    return {member_prefix(k) + name: value for k, params in enumerate(members) for name, value in params.items()}


def split_members(parameters: dict[str, np.ndarray], config: MLPConfig) -> list[dict[str, np.ndarray]]:
    """Inverse of :func:`join_members`: member k's parameters under their network names."""
    names = parameter_names(config)
    return [{name: parameters[member_prefix(k) + name] for name in names} for k in range(config.members)]


def initial_parameters(n_inputs: int, config: MLPConfig) -> dict[str, np.ndarray]:
    """Initial weights, drawn once from ``config.seed``; weights are (out, in), biases zero.

    He (normal, std sqrt(2 / fan_in)) suits the ReLU family; Glorot (uniform,
    limit sqrt(6 / (fan_in + fan_out))) suits tanh. ``init="auto"`` picks by activation.
    """
    rng = np.random.default_rng(config.seed)
    scheme = config.init
    if scheme == "auto":
        scheme = "glorot" if config.activation == "tanh" else "he"
    params = {}
    names = iter(parameter_names(config))
    for fan_in, fan_out in layer_sizes(n_inputs, config):
        if scheme == "he":
            weight = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_out, fan_in))
        else:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            weight = rng.uniform(-limit, limit, size=(fan_out, fan_in))
        params[next(names)] = weight.astype(config.np_dtype)
        params[next(names)] = np.zeros(fan_out, dtype=config.np_dtype)
    return params
