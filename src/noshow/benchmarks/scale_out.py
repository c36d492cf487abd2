"""One measurement of data-parallel training, run under the engine's launcher (``bench/scale-out``):

    mpiexec -n P python -m noshow.benchmarks.scale_out --backend numpy --data FILE --result OUT.json
    torchrun --nproc-per-node P -m noshow.benchmarks.scale_out --backend torch --data FILE --result OUT.json

Each process uses one thread. Rank 0 writes what it measured: seconds to read the shard and build
features, each epoch's seconds (training and the validation pass), steps per epoch, the bytes one
step all-reduces and the median time of one such all-reduce alone (timed apart from training, on a
buffer of the same size), the most CPU seconds any process spent per epoch, and the largest peak
memory of any process.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from noshow.distributed.launch import connect, detect
from noshow.distributed.train import fit_shard, load_shard
from noshow.nn.config import MLPConfig

ALLREDUCE_REPEATS = 200


def allreduce_seconds(comm, nbytes: int, dtype) -> float:
    """Median seconds of one in-place sum over the processes of a buffer of ``nbytes``."""
    buffer = np.ones(nbytes // np.dtype(dtype).itemsize, dtype=dtype)
    times = []
    comm.barrier()
    for _ in range(ALLREDUCE_REPEATS):
        start = time.perf_counter()
        comm.allreduce_(buffer)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(data: str, backend: str, epochs: int, batch_size: int) -> dict | None:
    from threadpoolctl import threadpool_limits

    from noshow.training.worker import peak_rss_mb

    launch = detect()
    if launch is None:
        raise SystemExit("run under mpiexec or torchrun (see the module doc)")
    comm = connect(launch, backend)
    threadpool_limits(1)
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    config = MLPConfig(epochs=epochs, patience=0, members=1, batch_size=batch_size)
    start = time.perf_counter()
    shard = load_shard(data, config, comm)
    features_seconds = time.perf_counter() - start
    cpu_start = time.process_time()
    model, plan, result = fit_shard(shard, backend, config, comm)
    # CPU seconds are what a shared host's other work cannot inflate (wall seconds are not).
    cpu = np.concatenate(comm.allgather(np.array([(time.process_time() - cpu_start) / len(result.history)])))
    cumulative = [r.seconds for r in result.history]
    n_params = sum(int(np.prod(v.shape)) for v in model.members[0].get_parameters().values())
    step_bytes = n_params * np.dtype(config.dtype).itemsize
    reduce_seconds = allreduce_seconds(comm, step_bytes, config.dtype)
    peaks = comm.total(*(peak_rss_mb() if r == comm.rank else 0.0 for r in range(comm.size)))
    rows = int(comm.total(len(shard.part))[0])
    comm.close()
    if comm.rank:
        return None
    return {"backend": backend, "processes": comm.size, "threads_per_process": 1,
            "rows": rows, "n_train": int(shard.counts.sum()),
            "global_batch": batch_size, "steps_per_epoch": plan.steps, "parameters": n_params,
            "bytes_per_step": step_bytes, "allreduce_seconds": reduce_seconds,
            "features_seconds": features_seconds,
            "epoch_seconds": [b - a for a, b in zip([0.0, *cumulative[:-1]], cumulative)],
            "epoch_cpu_seconds_max": float(cpu.max()),
            "peak_rss_mb_max": float(max(peaks))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--backend", choices=("numpy", "torch"), required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=MLPConfig().batch_size)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    result = measure(args.data, args.backend, args.epochs, args.batch_size)
    if result is not None:
        with open(args.result, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
