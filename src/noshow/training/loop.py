"""One training loop for both twins.

The loop owns everything that must be identical between the backends: the mini-batch order (one
NumPy generator seeded from the config), the learning-rate schedule, early stopping on validation
PR AUC with the best weights restored, timing and the progress bar. A backend only knows how to run
one epoch over given batches, how to predict, and how to get and set its parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from noshow.data.encoded import ChunkStore, Encoded, chunks, take_rows
from noshow.evaluation.metrics import average_precision
from noshow.nn.config import MLPConfig, join_members, lr_factor, member_config, resolve_pos_weight, split_members

@dataclass
class EpochRecord:
    """One epoch: mean training loss, validation PR AUC (None without validation data), seconds
    since training started (cumulative wall time, evaluation included) and learning rate used."""

    epoch: int
    loss: float
    val_pr_auc: float | None
    seconds: float
    lr: float


@dataclass
class TrainResult:
    """Best parameters (by validation PR AUC, else the last) and the full training history."""

    parameters: dict[str, np.ndarray]
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    pos_weight: float = 1.0
    train_seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.history)


class NumpyBackend:
    """Adapter of :class:`noshow.nn.numpy_mlp.NumpyMLP` to the training loop."""

    name = "numpy"

    def __init__(self, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
        from noshow.nn import numpy_mlp

        if device != "cpu":
            raise ValueError("the NumPy backend runs on the CPU only")
        self.config = config
        self.net = numpy_mlp.NumpyMLP(n_inputs, config, parameters)
        self.optimizer = numpy_mlp.make_optimizer(config)
        # Data-parallel training sets this to a callable(k) that combines batch k's gradients
        # across processes before the step (see noshow.distributed.train); None: one process.
        self.reduce_gradients = None

    def prepare(self, X, y, sample_weight):
        """Keep the training data; X is an (n, d) array or a compact :class:`Encoded`."""
        dtype = self.config.np_dtype
        self._X = X if isinstance(X, Encoded) else np.ascontiguousarray(X, dtype=dtype)
        self._y = np.asarray(y, dtype=dtype)
        self._w = None if sample_weight is None else np.asarray(sample_weight, dtype=dtype)

    def train_batches(self, batches: list[np.ndarray], epoch: int, pos_weight: float) -> float:
        """One optimiser step per batch of the prepared rows; returns the summed batch losses x sizes."""
        self.optimizer.lr = self.config.lr * lr_factor(self.config, epoch)
        total = 0.0
        for k, idx in enumerate(batches):
            w = None if self._w is None else self._w[idx]
            X = take_rows(self._X, idx, self.config.np_dtype)
            total += len(idx) * self.net.loss_and_gradients(X, self._y[idx], pos_weight, w)
            if self.reduce_gradients is not None:
                self.reduce_gradients(k)
            # Speed: the whole network as one array (the optimisers are element-wise, so this is
            # the per-parameter update, bit for bit).
            self.optimizer.step({"network": self.net.flat_parameters}, {"network": self.net.flat_gradients})
        return total

    def end_epoch(self) -> None:
        """Nothing to do: the learning rate is set from the epoch number in train_batches."""

    def release(self) -> None:
        """Drop the references to the training data (training is over)."""
        self._X = self._y = self._w = None

    def predict_logits(self, X) -> np.ndarray:
        """Logits (n,) of an array or :class:`Encoded`, in chunks to bound memory."""
        dtype = self.config.np_dtype
        parts = [self.net.forward(take_rows(X, rows, dtype)) for rows in chunks(len(X))]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def get_parameters(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.net.parameters.items()}

    def set_parameters(self, parameters: dict[str, np.ndarray]) -> None:
        for name, value in parameters.items():
            self.net.parameters[name][...] = value


class TorchBackend:
    """Adapter of :class:`noshow.nn.torch_mlp.TorchMLP` (``torch.optim``, ``LambdaLR``)."""

    name = "torch"

    def __init__(self, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
        import torch

        from noshow.nn import torch_mlp

        self.torch, self.tm = torch, torch_mlp
        self.config = config
        self.device = torch.device(device)
        self.dtype = torch_mlp.TORCH_DTYPES[config.dtype]
        # Dropout masks come from torch's generator; seeding it keeps runs reproducible.
        torch.manual_seed(config.seed)
        self.model = torch_mlp.build(n_inputs, config, parameters, device=device)
        # What training calls, and a factor for batch k's loss: data-parallel training wraps the
        # model in DistributedDataParallel and weighs each process's share of a global batch
        # (see noshow.distributed.train); one process: the model itself, no factors.
        self.trainer, self.loss_factors = self.model, None
        self.optimizer = torch_mlp.make_optimizer(self.model, config)
        self.scheduler = torch_mlp.make_scheduler(self.optimizer, config)

    def _tensor(self, array):
        return self.torch.as_tensor(np.asarray(array)).to(device=self.device, dtype=self.dtype)

    def prepare(self, X, y, sample_weight):
        """Move the training data to the device once; an :class:`Encoded` stays compact there."""
        if isinstance(X, Encoded):
            self._X = (self._tensor(X.dense), self.torch.as_tensor(X.hot, dtype=self.torch.long, device=self.device), X.width)
        else:
            self._X = self._tensor(X)
        self._y = self._tensor(y)
        self._w = None if sample_weight is None else self._tensor(sample_weight)
        self._loss = None

    def _epoch_rows(self, batches: list[np.ndarray]):
        """The epoch's rows, gathered once in batch order: (inputs, labels, weights), each sliced
        per batch afterwards. One gather per epoch instead of three per batch."""
        order = self.torch.from_numpy(np.concatenate(batches)).to(self.device)

        def gather(t):  # index_select copies whole rows; t[order] went element by element (3x slower)
            return t.index_select(0, order)

        inputs = (gather(self._X[0]), gather(self._X[1])) if isinstance(self._X, tuple) else gather(self._X)
        return inputs, gather(self._y), None if self._w is None else gather(self._w)

    def _batch(self, inputs, rows: slice):
        """Dense input rows of one mini-batch; one-hot columns are scattered in on the device."""
        if not isinstance(inputs, tuple):
            return inputs[rows]
        dense, hot = inputs
        out = self.torch.zeros((rows.stop - rows.start, self._X[2]), dtype=self.dtype, device=self.device)
        out[:, : dense.shape[1]] = dense[rows]
        return out.scatter_(1, hot[rows], 1.0)

    def train_batches(self, batches: list[np.ndarray], epoch: int, pos_weight: float) -> float:
        """One optimiser step per batch of the prepared rows; returns the summed batch losses x sizes."""
        torch = self.torch
        if self._loss is None:
            self._loss = self.tm.loss_fn(self.config, pos_weight)
        self.model.train()
        inputs, y, w = self._epoch_rows(batches)
        losses, start = [], 0
        for k, idx in enumerate(batches):
            rows = slice(start, start + len(idx))
            start = rows.stop
            loss = self._loss(self.trainer(self._batch(inputs, rows)), y[rows], None if w is None else w[rows])
            self.optimizer.zero_grad(set_to_none=True)
            (loss if self.loss_factors is None else loss * self.loss_factors[k]).backward()
            self.optimizer.step()
            losses.append(loss.detach())
        sizes = torch.tensor([len(idx) for idx in batches], dtype=torch.float64, device=self.device)
        return float(torch.stack(losses).to(torch.float64) @ sizes)

    def end_epoch(self) -> None:
        self.scheduler.step()

    def release(self) -> None:
        """Free the training data's device copy (training is over): an ensemble's members would
        otherwise each keep one, about 19 MB apiece on the real file."""
        self._X = self._y = self._w = None

    def predict_logits(self, X) -> np.ndarray:
        """Logits (n,) of an array or :class:`Encoded`, in chunks to bound memory."""
        torch = self.torch
        self.model.eval()
        with torch.inference_mode():
            out = [self.model(self._tensor(take_rows(X, rows, self.config.np_dtype))).cpu().numpy()
                   for rows in chunks(len(X))]
        return np.concatenate(out) if out else np.zeros(0, dtype=self.config.np_dtype)

    def get_parameters(self) -> dict[str, np.ndarray]:
        return self.tm.parameters_of(self.model)

    def set_parameters(self, parameters: dict[str, np.ndarray]) -> None:
        self.tm.load_parameters(self.model, parameters)


BACKEND_CLASSES = {"numpy": NumpyBackend, "torch": TorchBackend}
BACKENDS = tuple(BACKEND_CLASSES)  # the twins' names, everywhere: CLI choices, reports, files


def make_backend(name: str, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
    """The training adapter for ``name`` (one of :data:`BACKENDS`)."""
    if name not in BACKEND_CLASSES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKEND_CLASSES[name](n_inputs, config, parameters, device)


class Ensemble:
    """``config.members`` networks of one backend whose logits are averaged: the model that noshow
    trains, saves and serves.

    Member k is built from :func:`noshow.nn.config.member_config` (its own seed, hence its own
    initial weights, batch order and dropout masks), so the NumPy and PyTorch ensembles of one
    config are twins member by member. Parameters are one flat dict, member k's under
    ``members.<k>.``.
    """

    def __init__(self, name: str, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
        self.name = name
        self.config = config
        initial = split_members(parameters, config) if parameters is not None else [None] * config.members
        self.members = [make_backend(name, n_inputs, member_config(config, k), p, device)
                        for k, p in enumerate(initial)]

    def predict_logits(self, X) -> np.ndarray:
        """Mean of the members' logits, shape (n,): averaging in logit space keeps one decision scale."""
        logits = [member.predict_logits(X) for member in self.members]
        return np.mean(logits, axis=0, dtype=logits[0].dtype)  # one member: its logits, exactly

    def get_parameters(self) -> dict[str, np.ndarray]:
        return join_members([member.get_parameters() for member in self.members])


def make_model(name: str, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu") -> Ensemble:
    """The :class:`Ensemble` of ``config.members`` ``name`` networks (initial or given parameters);
    :func:`make_backend` rejects an unknown ``name``."""
    return Ensemble(name, n_inputs, config, parameters, device)


def batch_order(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's mini-batches: a fresh permutation of range(n) cut into batch_size pieces."""
    perm = rng.permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def predict_all(backend, X) -> np.ndarray:
    """Logits of every row of an array, :class:`Encoded` or :class:`ChunkStore` (chunk by chunk)."""
    if isinstance(X, ChunkStore):
        return np.concatenate([backend.predict_logits(X.chunk(i)[0]) for i in range(len(X.prefixes))])
    return backend.predict_logits(X)


class LocalPlan:
    """How one process trains: its own rows are the whole batch, its own validation rows decide.

    Data-parallel training (:mod:`noshow.distributed.train`) swaps in a plan whose batches are
    each process's share of a global batch and whose counts and scores are global.
    """

    def generator(self, seed: int) -> np.random.Generator:
        """The generator of the batch order."""
        return np.random.default_rng(seed)

    def batches(self, n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        return batch_order(n, batch_size, rng)

    def pos_weight(self, config: MLPConfig, y: np.ndarray) -> float:
        return resolve_pos_weight(config, y)

    def mean_loss(self, total: float, n: int) -> float:
        return total / n

    def has_validation(self, y_val) -> bool:
        return y_val is not None and len(np.unique(y_val)) == 2

    def val_score(self, y_val: np.ndarray, logits: np.ndarray) -> float:
        return average_precision(y_val, logits)


LOCAL = LocalPlan()


def _run_epoch(backend, X, y, config, epoch, pos_weight, rng, plan: LocalPlan = LOCAL) -> float:
    """One pass over the training rows; returns the mean loss.

    In memory, one permutation of all rows. From a :class:`ChunkStore`, the chunks in a random
    order and a permutation within each chunk: only one chunk is ever in memory.
    """
    if not isinstance(X, ChunkStore):
        total = backend.train_batches(plan.batches(len(y), config.batch_size, rng), epoch, pos_weight)
    else:
        total = 0.0
        for i in rng.permutation(len(X.prefixes)):
            X_chunk, y_chunk = X.chunk(i)
            backend.prepare(X_chunk, y_chunk, None)
            total += backend.train_batches(batch_order(len(y_chunk), config.batch_size, rng), epoch, pos_weight)
    backend.end_epoch()
    return plan.mean_loss(total, len(y))


@dataclass
class EnsembleResult:
    """The members' :class:`TrainResult`, in member order, and what the model file records."""

    members: list[TrainResult]
    # The members trained afresh on training + validation rows for their best epoch counts
    # (``noshow train --refit``); the model keeps their weights, its calibration those above.
    refit: "EnsembleResult | None" = None

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        return join_members([r.parameters for r in self.members])

    @property
    def train_seconds(self) -> float:
        """Seconds of training, the refit's included."""
        return sum(r.train_seconds for r in self.members) + (self.refit.train_seconds if self.refit else 0.0)

    @property
    def epochs_run(self) -> int:
        return sum(r.epochs_run for r in self.members)

    @property
    def best_epochs(self) -> list[int]:
        return [r.best_epoch for r in self.members]

    @property
    def pos_weight(self) -> float:
        return self.members[0].pos_weight

    @property
    def history(self) -> list[EpochRecord]:
        """The first member's curve (the figures show one network's convergence)."""
        return self.members[0].history


def fit_ensemble(model: Ensemble, X, y, config: MLPConfig, X_val=None, y_val=None, sample_weight=None,
                 progress: bool = False, label: str | None = None, epochs: list[int] | None = None,
                 plan: LocalPlan = LOCAL) -> EnsembleResult:
    """Train each member of ``model`` with :func:`fit` (its own early stopping), one after another.

    Arguments as for :func:`fit`; ``config`` is the model's (member configs derive from it).
    ``epochs``: member k runs exactly ``epochs[k]`` epochs (a refit, see :func:`fit`).
    """
    results = []
    for k, member in enumerate(model.members):
        tag = label or model.name
        if config.members > 1:
            tag += f" member {k + 1}/{config.members}"
        results.append(fit(member, X, y, member.config, X_val, y_val, sample_weight, progress, tag,
                           None if epochs is None else epochs[k], plan))
    return EnsembleResult(results)


def fit(backend, X, y, config: MLPConfig, X_val=None, y_val=None, sample_weight=None,
        progress: bool = False, label: str | None = None, epochs: int | None = None,
        plan: LocalPlan = LOCAL) -> TrainResult:
    """Train ``backend`` on (X, y) with early stopping on (X_val, y_val) if given.

    Parameters
    ----------
    X : (n, d) features: an array, an :class:`Encoded`, or a :class:`ChunkStore` on disk (then
        ``y`` may be None: the store holds the labels, and sample weights are not supported).
    y : (n,) labels in {0, 1}; sample_weight : optional (n,) weights.
    X_val, y_val : validation data (array, Encoded or ChunkStore) for early stopping on PR AUC.
    progress : show a tqdm bar with epoch, loss and validation PR AUC on stderr.
    epochs : run exactly this many epochs (at most ``config.epochs``) and keep the last weights,
        without validation: a refit for an epoch count chosen earlier. The learning-rate schedule
        stays ``config``'s, so its first ``epochs`` epochs are those of the run that chose them.
    plan : batches, class weight, loss and validation score of one process (:data:`LOCAL`) or of
        data-parallel processes, each holding a shard of the rows.
    """
    from tqdm.auto import tqdm

    y = X.labels() if isinstance(X, ChunkStore) else np.asarray(y)
    if isinstance(X_val, ChunkStore):
        y_val = X_val.labels()
    pos_weight = plan.pos_weight(config, y)
    if not isinstance(X, ChunkStore):
        backend.prepare(X, y, sample_weight)
    rng = plan.generator(config.seed)
    if epochs is not None and not 1 <= epochs <= config.epochs:
        raise ValueError(f"a refit runs 1 to {config.epochs} epochs, not {epochs}")
    use_val = epochs is None and X_val is not None and plan.has_validation(y_val)
    result = TrainResult(parameters=backend.get_parameters(), pos_weight=pos_weight)
    best = -np.inf
    bar = tqdm(range(epochs or config.epochs), desc=label or backend.name, disable=not progress,
               leave=False, unit="epoch", dynamic_ncols=True)
    start = time.perf_counter()
    for epoch in bar:
        loss = _run_epoch(backend, X, y, config, epoch, pos_weight, rng, plan)
        if not np.isfinite(loss):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1} (loss {loss}); lower --lr")
        score = plan.val_score(y_val, predict_all(backend, X_val)) if use_val else None
        result.history.append(EpochRecord(epoch + 1, loss, score, time.perf_counter() - start,
                                          config.lr * lr_factor(config, epoch)))
        bar.set_postfix(loss=f"{loss:.4f}", val_pr_auc="-" if score is None else f"{score:.4f}")
        if score is None or score > best:
            best = score if score is not None else best
            result.best_epoch = epoch + 1
            result.parameters = backend.get_parameters()
        elif config.patience and epoch + 1 - result.best_epoch >= config.patience:
            break
    bar.close()
    result.train_seconds = time.perf_counter() - start
    backend.set_parameters(result.parameters)
    backend.release()
    return result
