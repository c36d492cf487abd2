"""Data-parallel training: P processes, each with a shard of the patients, train one network.

The one-process loop (:func:`noshow.training.loop.fit`) runs unchanged in every process with a
:class:`ShardedPlan` in place of the local plan:

- **Batches.** Every process takes the same number of steps per epoch, ``ceil(N / (P b))`` for
  ``N`` training rows in all and batch size ``b``; each cuts its own permutation of its rows into
  that many nearly equal pieces. Step k's global batch is the processes' k-th pieces together.
- **Gradients.** The gradient of the global batch's mean loss is the sum over processes of each
  piece's mean-loss gradient times its share of the batch, ``n_r / N_k``. The NumPy twin scales
  its gradient buffer (one flat array the layers write into) by that share and all-reduces it in
  place with MPI; the PyTorch twin scales its loss by ``P n_r / N_k`` and lets
  ``DistributedDataParallel`` average (it divides by P). So P processes with local batches of b
  rows take the steps one process takes with batches of Pb rows in the same row order.
- **Decisions once.** Class weight, mean loss and validation counts are global sums; the
  validation PR AUC is computed by rank 0 from every process's logits and broadcast, so every
  process stops at the same epoch and keeps the same weights. Rank 0 fits the calibration map and
  threshold on all validation logits and alone writes the model file, atomically.
- **Features.** Each process fits the feature statistics of its training rows; they are combined
  (Chan's formula for means and variances, summed counts for vocabularies) into the pipeline one
  process would fit on all training rows.

Rows are split into train, validation and test parts by a hash of ``AppointmentID``, as the
out-of-core path splits them (:func:`noshow.data.stream._part`), so the parts do not depend on how
many processes there are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.features import FeaturePipeline, raw_features
from noshow.distributed.comm import Comm
from noshow.distributed.shard import read_shard, source_record
from noshow.errors import NoshowError
from noshow.nn.config import MLPConfig, resolve_pos_weight
from noshow.training.loop import LocalPlan, fit_ensemble, make_model, predict_all

MIN_ROWS = 50  # the fewest training or validation rows in all, as for one process


class ShardedPlan(LocalPlan):
    """Batches, class weight, loss and validation score of data-parallel processes.

    ``rows`` : (P,) training rows of each process; ``batch_size`` : rows of one process's piece.
    After :meth:`batches`, ``shares[k]`` is this process's share ``n_r / N_k`` of step k's batch.
    """

    def __init__(self, comm: Comm, rows: np.ndarray, batch_size: int):
        self.comm = comm
        self.steps = max(1, math.ceil(int(rows.sum()) / (comm.size * batch_size)))
        if rows.min() < self.steps:
            raise NoshowError(f"a process holds {int(rows.min())} training rows, fewer than the "
                              f"{self.steps} steps of an epoch: use fewer processes or a smaller --batch-size")
        # array_split gives the first n % steps pieces one extra row: every size is known to all.
        sizes = np.array([[n // self.steps + (k < n % self.steps) for k in range(self.steps)] for n in rows])
        self.shares = sizes[comm.rank] / sizes.sum(axis=0)  # (steps,), float64

    def generator(self, seed: int) -> np.random.Generator:
        """Each process permutes its rows with a generator of its own."""
        return np.random.default_rng([seed, self.comm.rank])

    def batches(self, n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        return local_batches(n, self.steps, rng)

    def pos_weight(self, config: MLPConfig, y: np.ndarray) -> float:
        return resolve_pos_weight(config, y, self.comm.total)

    def mean_loss(self, total: float, n: int) -> float:
        total, rows = self.comm.total(total, n)
        return total / rows

    def has_validation(self, y_val) -> bool:
        rows, positives = self.comm.total(0 if y_val is None else len(y_val),
                                          0 if y_val is None else float(np.sum(y_val == 1)))
        return 0 < positives < rows

    def val_score(self, y_val: np.ndarray, logits: np.ndarray) -> float:
        from noshow.evaluation.metrics import average_precision

        labels, scores = self.gather(y_val, logits)
        score = np.array([average_precision(labels, scores) if self.comm.rank == 0 else 0.0])
        return float(self.comm.broadcast_(score)[0])

    def gather(self, y: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every process's labels and logits, in rank order (on every process)."""
        labels = np.concatenate(self.comm.allgather(np.asarray(y, dtype=np.int8)))
        return labels, np.concatenate(self.comm.allgather(np.ascontiguousarray(logits)))


def local_batches(n: int, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of a process's rows: a permutation of range(n) cut into ``steps`` nearly equal pieces."""
    return np.array_split(rng.permutation(n), steps)


def attach(backend, plan: ShardedPlan, comm: Comm, device: str = "cpu") -> None:
    """Make one member's training adapter data-parallel: gradients reduced across processes with
    each step's shares; dropout masks drawn from a generator of this process's own."""
    rank = comm.rank
    if backend.name == "numpy":
        from noshow.nn.numpy_mlp import Dropout

        flat = backend.net.flat_gradients  # every gradient: one in-place all-reduce per step

        def reduce_gradients(k: int) -> None:
            np.multiply(flat, plan.shares[k], out=flat, casting="same_kind")
            comm.allreduce_(flat)

        backend.reduce_gradients = reduce_gradients
        rng = np.random.default_rng([backend.config.seed, 1, rank])
        for layer in backend.net.layers:
            if isinstance(layer, Dropout) and rank:
                layer.rng = rng
    else:
        import torch
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(device).index] if device.startswith("cuda") else None
        backend.trainer = DistributedDataParallel(backend.model, device_ids=ids)
        backend.loss_factors = [float(s * comm.size) for s in plan.shares]
        if rank:
            torch.manual_seed(backend.config.seed + 7919 * rank)


def shard_parts(path: str | Path, rank: int, size: int) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """The typed rows of process ``rank`` of ``size``, their raw features and their part (0 train,
    1 validation, 2 test)."""
    from noshow.data.stream import _part

    frame = read_shard(path, rank, size)
    raw = raw_features(frame)
    return frame, raw, _part(frame, 0).to_numpy()


def fit_pipeline(raw_train: pl.DataFrame, comm: Comm) -> FeaturePipeline:
    """The pipeline one process would fit on every process's training rows together."""
    parts = comm.allgather_json(FeaturePipeline.statistics([raw_train]))
    return FeaturePipeline().fit_statistics(FeaturePipeline.merge_statistics(parts))


@dataclass
class Shard:
    """One process's rows, ready to train: ``frame`` typed rows (n,), ``raw`` their raw features,
    ``part`` (n,) 0 train / 1 validation / 2 test, ``y`` (n,) labels, the pipeline fitted on every
    process's training rows, the encoded training and validation rows, and ``rows`` (P,) every
    process's number of training rows."""

    frame: pl.DataFrame
    raw: pl.DataFrame
    part: np.ndarray
    y: np.ndarray
    pipeline: FeaturePipeline
    X_train: object
    X_val: object
    rows: np.ndarray


def load_shard(path: str | Path, config: MLPConfig, comm: Comm) -> Shard:
    """Read this process's patients from ``path`` and build their features (collective)."""
    frame, raw, part = shard_parts(path, comm.rank, comm.size)
    train, val = part == 0, part == 1
    rows = np.concatenate(comm.allgather(np.array([train.sum()], dtype=np.int64)))
    n_val = int(comm.total(val.sum())[0])
    if min(int(rows.sum()), n_val) < MIN_ROWS:
        raise NoshowError(f"{path}: too few rows to train ({int(rows.sum())} training, {n_val} validation)")
    raw_train = raw.filter(train)
    pipeline = fit_pipeline(raw_train, comm)
    dtype = np.dtype(config.dtype)
    return Shard(frame, raw, part, frame[S.TARGET].to_numpy().astype(np.int64), pipeline,
                 pipeline.encode(raw_train, dtype), pipeline.encode(raw.filter(val), dtype), rows)


def fit_shard(shard: Shard, backend: str, config: MLPConfig, comm: Comm, progress: bool = False,
              device: str = "cpu"):
    """Train every member data-parallel on the processes' shards; returns (model, plan, result)."""
    plan = ShardedPlan(comm, shard.rows, config.batch_size)
    model = make_model(backend, len(shard.pipeline.feature_names), config, device=device)
    for member in model.members:
        attach(member, plan, comm, device)
    result = fit_ensemble(model, shard.X_train, shard.y[shard.part == 0], config, shard.X_val,
                          shard.y[shard.part == 1], progress=progress and comm.rank == 0,
                          label=f"{backend} rank 0 of {comm.size}", plan=plan)
    return model, plan, result


def train_data_parallel(path: str | Path, backend: str, config: MLPConfig, comm: Comm, progress: bool = False,
                        device: str = "cpu", calibration: str = "auto"):
    """Train on ``path`` with every process of ``comm``; returns (model, result) on rank 0 and
    (None, result) elsewhere. See the module doc for what is shared and how."""
    from noshow.clinic.drift import training_profile
    from noshow.clinic.reasons import reference_values
    from noshow.training.train import finish_from_logits

    shard = load_shard(path, config, comm)
    model, plan, result = fit_shard(shard, backend, config, comm, progress, device)
    labels, logits = plan.gather(shard.y[shard.part == 1], predict_all(model, shard.X_val))
    n_all = comm_sizes(comm, shard.part)
    if comm.rank != 0:
        return None, result
    data_record = {**source_record(path), "synthetic": False,
                   "rows": int(sum(n_all.values())), "split": "hash", **n_all, "processes": comm.size}
    train = shard.part == 0
    train_raw = shard.raw.filter(train)
    days = shard.frame[S.APPOINTMENT_DATE].filter(pl.Series(train))
    # The reasons' typical appointment and the drift profile come from rank 0's patients, a
    # random sample of them all (hash partition), as the streamed path takes its first block.
    model_file = finish_from_logits(backend, config, result, shard.pipeline, logits, labels, data_record, calibration,
                                    reference_values(train_raw), training_profile(train_raw, days))
    return model_file, result


def comm_sizes(comm: Comm, part: np.ndarray) -> dict[str, int]:
    """Rows of each part over all processes (collective: every process must call it)."""
    counts = comm.total(*(float(np.sum(part == code)) for code in range(3)))
    return {f"n_{name}": int(c) for name, c in zip(("train", "val", "test"), counts)}
