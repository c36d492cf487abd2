"""Checking a data-parallel run against one process: the oracle of the equivalence tests
(``tests/test_distributed.py``) and of ``bench/distributed-equivalence``, kept beside the tests
because nothing in the package uses it.

P processes, each with its piece of a step's global batch of b rows, take, step for step, the
steps one process takes with batches of the P pieces together. :func:`replay_one_process` replays
those steps with the one-process training step
(:meth:`~noshow.nn.twins.NumpyBackend.train_batches` or the PyTorch twin's) on every process's
training rows, so its weights can be compared with the run's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from noshow.data import schema as S
from noshow.distributed.train import local_batches, shard_parts
from noshow.nn.config import member_config, resolve_pos_weight
from noshow.nn.twins import make_backend


def replay_one_process(path: str | Path, model, backend: str, processes: int = 2) -> dict[str, np.ndarray]:
    """The weights of member 0 of ``model`` (trained on ``path`` by ``processes`` processes) as
    one process reaches them, each step's batch being the processes' pieces together, for the
    epochs up to the run's best one. The run must have had dropout off for the two to agree."""
    config = member_config(model.config, 0)
    data = model.metadata["data"]
    shards = [shard_parts(path, rank, processes, data["split"], data.get("split_seed", 0)) for rank in range(processes)]
    encoded = [model.pipeline.encode(s.raw.filter(s.part == 0), np.float64).to_array(np.float64) for s in shards]
    labels = [s.frame[S.TARGET].to_numpy()[s.part == 0] for s in shards]
    rows = [len(y) for y in labels]
    offsets = np.cumsum([0, *rows[:-1]])
    steps = math.ceil(sum(rows) / config.batch_size)
    y = np.concatenate(labels)
    one = make_backend(backend, encoded[0].shape[1], config)
    one.prepare(np.concatenate(encoded), y, None)
    generators = [np.random.default_rng([config.seed, rank]) for rank in range(processes)]
    for epoch in range(model.metadata["training"]["best_epochs"][0]):
        pieces = [local_batches(n, steps, g) for n, g in zip(rows, generators)]
        batches = [np.concatenate([p[k] + o for p, o in zip(pieces, offsets)]) for k in range(steps)]
        one.train_batches(batches, epoch, resolve_pos_weight(config, y))
        one.end_epoch()
    return one.get_parameters()


def max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest absolute difference between two parameter sets with the same names."""
    if a.keys() != b.keys():
        raise ValueError("the parameter sets have different names")
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
