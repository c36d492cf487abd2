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

from noshow.nn.config import MLPConfig, join_members, lr_factor, resolve_pos_weight
from noshow.nn.encoded import ChunkStore
from noshow.nn.twins import NO_HOOKS, Ensemble, TrainingHooks, predict_all
from noshow.stats.metrics import average_precision


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


def batch_order(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's mini-batches: a fresh permutation of range(n) cut into batch_size pieces."""
    perm = rng.permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


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
                 plan: LocalPlan = LOCAL, hooks: TrainingHooks = NO_HOOKS) -> EnsembleResult:
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
                           None if epochs is None else epochs[k], plan, hooks))
    return EnsembleResult(results)


def fit(backend, X, y, config: MLPConfig, X_val=None, y_val=None, sample_weight=None,
        progress: bool = False, label: str | None = None, epochs: int | None = None,
        plan: LocalPlan = LOCAL, hooks: TrainingHooks = NO_HOOKS) -> TrainResult:
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
    hooks : what each step adds (:class:`TrainingHooks`; data-parallel: the gradients' all-reduce).
    """
    from tqdm.auto import tqdm

    y = X.labels() if isinstance(X, ChunkStore) else np.asarray(y)
    if isinstance(X_val, ChunkStore):
        y_val = X_val.labels()
    pos_weight = plan.pos_weight(config, y)
    if not isinstance(X, ChunkStore):
        backend.prepare(X, y, sample_weight)
    rng = plan.generator(config.seed)
    backend.begin(hooks)
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
