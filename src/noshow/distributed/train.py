"""Data-parallel training: P processes, each with a shard of the patients, train the network one
process trains, on the same rows.

The one-process loop (:func:`noshow.training.loop.fit`) runs unchanged in every process with a
:class:`ShardedPlan` in place of the local plan and :class:`DataParallelHooks`, the loop's
callbacks, in place of none:

- **Rows.** Every process computes the split one process makes for a model for use (``--split``,
  ``--split-seed``; no test part: :func:`noshow.data.splits.make_split`) from the split's keys of
  every row, gathered in file order (:func:`gather_keys`: position, ``AppointmentID``, label, day,
  and for the patient split the patient), so the training and validation rows are one process's,
  whatever P. Each process then trains on its shard's share of the training rows. A run that one
  process would stream from disk (``--stream``, or a file over 1 GiB) takes the streamed path's
  hash split instead (:func:`noshow.data.stream._part`), as one process would.
- **Batches.** A step's global batch is ``--batch-size`` rows, as for one process: every process
  takes the ``ceil(N / b)`` steps per epoch one process takes on ``N`` training rows, cutting its
  own permutation of its rows into that many nearly equal pieces. Step k's global batch is the
  processes' k-th pieces together.
- **Gradients.** The gradient of the global batch's mean loss is the sum over processes of each
  piece's mean-loss gradient times its share of the batch, ``n_r / N_k``. The NumPy twin scales
  its gradient buffer (one flat array the layers write into) by that share and all-reduces it in
  place with MPI (:meth:`DataParallelHooks.after_backward`); the PyTorch twin scales its loss by
  ``P n_r / N_k`` and lets ``DistributedDataParallel`` average (it divides by P).
- **Decisions once.** Class weight, mean loss and validation counts are global sums; the
  validation PR AUC is computed by rank 0 from every process's logits and broadcast, so every
  process stops at the same epoch and keeps the same weights. Rank 0 fits the calibration map and
  threshold on all validation logits, in file order as one process holds them, and alone writes
  the model file, atomically (:func:`noshow.training.train.finish_model`).
- **Features.** Each process fits the feature statistics of its training rows; they are combined
  (Chan's formula for means and variances, summed counts for vocabularies) into the pipeline one
  process would fit on all training rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.features import FeaturePipeline, raw_features
from noshow.data.splits import make_split
from noshow.distributed.comm import Comm
from noshow.distributed.shard import ROW, read_shard, source_record
from noshow.errors import NoshowError
from noshow.nn.config import MLPConfig, resolve_pos_weight
from noshow.nn.twins import TrainingHooks, make_model, predict_all
from noshow.training.loop import LocalPlan, batch_order, fit_ensemble

if TYPE_CHECKING:
    from noshow.training.train import FittedRows

MIN_ROWS = 50  # the fewest training or validation rows in all, as for one process
HASH = "hash"  # the streamed path's split (train, validation and test parts by AppointmentID)
ENGINES = {"numpy": "mpi", "torch": "torch.distributed"}  # each twin's engine, as the model file records it
TRAIN, VAL, TEST = 0, 1, 2  # part codes of a row


class ShardedPlan(LocalPlan):
    """Batches, class weight, loss and validation score of data-parallel processes.

    ``rows`` : (P,) training rows of each process; ``batch_size`` : rows of a step's global batch.
    ``holder`` : (N,) for each training row of the file, in file order, the rank that holds it
    (its rows in file order too); then each step's global batch is the very batch one process
    draws (:func:`~noshow.training.loop.batch_order` with one process's generator), each process
    taking its rows of it. Without (the hash split of files too large for that), each process cuts
    its own permutation into the epoch's steps, in nearly equal pieces.
    After :meth:`batches`, ``shares[k]`` is this process's share ``n_r / N_k`` of step k's batch.
    """

    def __init__(self, comm: Comm, rows: np.ndarray, batch_size: int, holder: np.ndarray | None = None):
        self.comm, self.batch_size, self.holder = comm, batch_size, holder
        self.steps = max(1, math.ceil(int(rows.sum()) / batch_size))
        if holder is not None:
            self.local = np.zeros(len(holder), dtype=np.int64)  # a row's place among its holder's
            for rank in range(comm.size):
                mine = holder == rank
                self.local[mine] = np.arange(int(mine.sum()))
            return
        if rows.min() < self.steps:
            raise NoshowError(f"a process holds {int(rows.min())} training rows, fewer than the "
                              f"{self.steps} steps of an epoch: use fewer processes or a larger --batch-size")
        # array_split gives the first n % steps pieces one extra row: every size is known to all.
        sizes = np.array([[n // self.steps + (k < n % self.steps) for k in range(self.steps)] for n in rows])
        self.shares = sizes[comm.rank] / sizes.sum(axis=0)  # (steps,), float64

    def generator(self, seed: int) -> np.random.Generator:
        """One process's generator when every process draws its batches; else each its own."""
        return np.random.default_rng(seed if self.holder is not None else [seed, self.comm.rank])

    def batches(self, n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        if self.holder is None:
            return local_batches(n, self.steps, rng)
        pieces, shares = [], []
        for batch in batch_order(len(self.holder), self.batch_size, rng):
            mine = self.holder[batch] == self.comm.rank
            pieces.append(self.local[batch[mine]])
            shares.append(mine.sum() / len(batch))
        self.shares = np.array(shares)
        return pieces

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
        from noshow.stats.metrics import average_precision

        labels, scores = self.gather(y_val, logits)
        score = np.array([average_precision(labels, scores) if self.comm.rank == 0 else 0.0])
        return float(self.comm.broadcast_(score)[0])

    def gather(self, y: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every process's labels and logits, in rank order (on every process)."""
        labels = np.concatenate(self.comm.allgather(np.asarray(y, dtype=np.int8)))
        return labels, np.concatenate(self.comm.allgather(np.ascontiguousarray(logits)))


class DataParallelHooks(TrainingHooks):
    """The training loop's callbacks that make one member's training data-parallel: each step's
    gradients summed over the processes with the step's shares (:class:`ShardedPlan`), and
    dropout masks of each process's own (rank 0 keeps one process's)."""

    def __init__(self, plan: ShardedPlan, comm: Comm, device: str = "cpu"):
        self.plan, self.comm, self.device = plan, comm, device

    def dropout_stream(self) -> int:
        return self.comm.rank

    def after_backward(self, step: int, gradients: np.ndarray) -> None:
        np.multiply(gradients, self.plan.shares[step], out=gradients, casting="same_kind")
        self.comm.allreduce_(gradients)  # every gradient: one in-place all-reduce per step

    def wrap(self, module):
        import torch
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return DistributedDataParallel(module, device_ids=ids)

    def loss_factor(self, step: int) -> float:
        return float(self.plan.shares[step] * self.comm.size)  # DDP divides the summed gradients by P


def local_batches(n: int, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of a process's rows: a permutation of range(n) cut into ``steps`` nearly equal pieces."""
    return np.array_split(rng.permutation(n), steps)


def split_keys(shard: pl.DataFrame, kind: str) -> dict[str, np.ndarray]:
    """The columns of a shard (read with positions) that the ``kind`` split and the model file's
    record of rows read, as arrays (n,): position, ``AppointmentID``, label, day number, and for
    the patient split the patient keys (as text)."""
    keys = {name: shard[name].to_physical().to_numpy() for name in (ROW, S.APPOINTMENT_ID, S.TARGET, S.APPOINTMENT_DATE)}
    if kind == "patient":
        keys[S.PATIENT_KEY] = shard[S.PATIENT_KEY].to_list()
    return keys


HOLDER = "_holder"  # the rank that holds a row, in the gathered keys


def gather_keys(keys: dict, comm: Comm | None = None) -> pl.DataFrame:
    """Every process's :func:`split_keys` (``comm`` None: ``keys`` are every row's already) as one
    frame in file order, typed as the loaded file's columns, for :func:`~noshow.data.splits.make_split`;
    with ``comm``, column :data:`HOLDER` is the rank that holds each row."""
    columns = {}
    for name, values in keys.items():
        if comm is not None:
            gathered = comm.allgather_json(values) if isinstance(values, list) else comm.allgather(np.ascontiguousarray(values))
            values = [v for part in gathered for v in part] if isinstance(values, list) else np.concatenate(gathered)
            if name == ROW:
                columns[HOLDER] = np.repeat(np.arange(comm.size), [len(part) for part in gathered])
        columns[name] = pl.Series(name, values)
    frame = pl.DataFrame(columns).sort(ROW)
    if not np.array_equal(frame[ROW].to_numpy(), np.arange(frame.height)):
        raise NoshowError("the processes' shards do not hold every row of the file once")
    return frame.with_columns(pl.col(S.APPOINTMENT_DATE).cast(pl.Date), pl.col(S.TARGET).cast(pl.Int8))


def one_process_parts(keys: pl.DataFrame, kind: str, seed: int) -> tuple[np.ndarray, dict]:
    """(n,) part code of every row of the file (:func:`gather_keys`) in the split one process makes
    for a model for use, and the model file's record of it (:func:`noshow.training.train.rows_record`)."""
    from noshow.training.train import rows_record

    split = make_split(keys, kind, seed, hold_out_test=False)
    parts = np.full(keys.height, TEST, dtype=np.int8)
    parts[split.train], parts[split.val] = TRAIN, VAL
    return parts, rows_record(split, keys[S.APPOINTMENT_DATE], keys[S.APPOINTMENT_ID])


@dataclass
class ShardRows:
    """Process ``rank``'s rows and their part: ``frame`` (n,) typed rows with their positions in
    the file (first column :data:`ROW`), ``raw`` their raw features, ``part`` (n,) 0 train,
    1 validation, 2 test, ``record`` the data record's account of the split, and ``holder``
    (N,) the rank holding each of the file's training rows in file order (None: the hash split,
    or keys not gathered)."""

    frame: pl.DataFrame
    raw: pl.DataFrame
    part: np.ndarray
    record: dict
    holder: np.ndarray | None = None


def shard_parts(path: str | Path, rank: int, size: int, split: str = "random", seed: int = 0,
                comm: Comm | None = None) -> ShardRows:
    """The rows of process ``rank`` of ``size`` and their parts. ``split``: a split for use of one
    process, or :data:`HASH`. Collective with ``comm``; without, the keys of every row are read
    from ``path`` itself (checks and tests, in one process)."""
    frame = read_shard(path, rank, size, positions=True)
    holder = None
    if split == HASH:
        from noshow.data.stream import _part

        part, record = _part(frame, 0).to_numpy(), {"split": HASH}
    else:
        local = split_keys(frame, split)
        every = gather_keys(local, comm) if comm is not None else gather_keys(
            split_keys(read_shard(path, 0, 1, positions=True), split))
        parts, record = one_process_parts(every, split, seed)
        part = parts[local[ROW]]
        if HOLDER in every.columns:
            holder = every[HOLDER].to_numpy()[parts == TRAIN]
    return ShardRows(frame, raw_features(frame.drop(ROW)), part, record, holder)


def fit_pipeline(raw_train: pl.DataFrame, comm: Comm) -> FeaturePipeline:
    """The pipeline one process would fit on every process's training rows together."""
    parts = comm.allgather_json(FeaturePipeline.statistics([raw_train]))
    return FeaturePipeline().fit_statistics(FeaturePipeline.merge_statistics(parts))


@dataclass
class Shard:
    """One process's rows, ready to train: :class:`ShardRows` ``rows``, ``y`` (n,) labels, the
    pipeline fitted on every process's training rows, the encoded training and validation rows,
    and ``counts`` (P,) every process's number of training rows."""

    rows: ShardRows
    y: np.ndarray
    pipeline: FeaturePipeline
    X_train: object
    X_val: object
    counts: np.ndarray

    @property
    def part(self) -> np.ndarray:
        return self.rows.part


def load_shard(path: str | Path, config: MLPConfig, comm: Comm, split: str = "random", seed: int = 0) -> Shard:
    """Read this process's patients from ``path``, split the rows as one process would (``split``,
    ``seed``: see :func:`shard_parts`) and build their features (collective)."""
    rows = shard_parts(path, comm.rank, comm.size, split, seed, comm)
    train, val = rows.part == TRAIN, rows.part == VAL
    counts = np.concatenate(comm.allgather(np.array([train.sum()], dtype=np.int64)))
    n_val = int(comm.total(val.sum())[0])
    if min(int(counts.sum()), n_val) < MIN_ROWS:
        raise NoshowError(f"{path}: too few rows to train ({int(counts.sum())} training, {n_val} validation)")
    raw_train = rows.raw.filter(train)
    pipeline = fit_pipeline(raw_train, comm)
    dtype = np.dtype(config.dtype)
    return Shard(rows, rows.frame[S.TARGET].to_numpy().astype(np.int64), pipeline,
                 pipeline.encode(raw_train, dtype), pipeline.encode(rows.raw.filter(val), dtype), counts)


def fit_shard(shard: Shard, backend: str, config: MLPConfig, comm: Comm, progress: bool = False,
              device: str = "cpu"):
    """Train every member data-parallel on the processes' shards; returns (model, plan, result)."""
    plan = ShardedPlan(comm, shard.counts, config.batch_size, shard.rows.holder)
    model = make_model(backend, len(shard.pipeline.feature_names), config, device=device)
    result = fit_ensemble(model, shard.X_train, shard.y[shard.part == TRAIN], config, shard.X_val,
                          shard.y[shard.part == VAL], progress=progress and comm.rank == 0,
                          label=f"{backend} rank 0 of {comm.size}", plan=plan,
                          hooks=DataParallelHooks(plan, comm, device))
    return model, plan, result


def train_data_parallel(path: str | Path, backend: str, config: MLPConfig, comm: Comm, progress: bool = False,
                        device: str = "cpu", calibration: str = "auto", split: str = "random", seed: int = 0):
    """Train on ``path`` with every process of ``comm``; returns (model, result) on rank 0 and
    (None, result) elsewhere. ``split``, ``seed``: the split one process would make (see the
    module doc). See the module doc for what is shared and how."""
    from noshow.training.train import Scale, finish_model

    shard = load_shard(path, config, comm, split, seed)
    model, plan, result = fit_shard(shard, backend, config, comm, progress, device)
    val = shard.part == VAL
    labels, logits = plan.gather(shard.y[val], predict_all(model, shard.X_val))
    # In file order, as one process holds its validation rows: the calibration fit sees the same arrays.
    order = np.argsort(np.concatenate(comm.allgather(shard.rows.frame[ROW].to_numpy()[val])))
    n_all = comm_sizes(comm, shard.part)
    rows = fitted_rows(shard.rows, comm)
    if comm.rank != 0:
        return None, result
    data_record = {**source_record(path), "synthetic": False, "rows": int(sum(n_all.values())), **shard.rows.record,
                   **n_all, "processes": comm.size}
    model_file = finish_model(backend, config, result, shard.pipeline, logits[order], labels[order], data_record,
                              calibration, rows, Scale(comm.size, ENGINES[backend]))
    return model_file, result


def fitted_rows(rows: ShardRows, comm: Comm) -> FittedRows | None:
    """On rank 0, the training rows whose raw features and days the model file summarises (the
    reasons' reference, the drift profile; collective); None elsewhere. Every process's rows,
    gathered to rank 0 in file order, as one process summarises them; for the hash split (a file
    one process would stream), rank 0's own, a random sample of patients (hash partition), as the
    streamed path takes its first block."""
    from noshow.training.train import FittedRows

    train = rows.part == TRAIN
    mine = rows.raw.filter(train).with_columns(rows.frame[ROW].filter(train), rows.frame[S.APPOINTMENT_DATE].filter(train))
    if rows.holder is not None:
        parts = comm.gather_frame(mine)
        mine = None if parts is None else pl.concat(parts).sort(ROW)
    if comm.rank != 0:
        return None
    return FittedRows(mine.drop(ROW, S.APPOINTMENT_DATE), mine[S.APPOINTMENT_DATE])


def comm_sizes(comm: Comm, part: np.ndarray) -> dict[str, int]:
    """Rows of each part over all processes (collective: every process must call it)."""
    counts = comm.total(*(float(np.sum(part == code)) for code in (TRAIN, VAL, TEST)))
    return {f"n_{name}": int(c) for name, c in zip(("train", "val", "test"), counts)}
