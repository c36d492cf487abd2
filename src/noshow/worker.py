"""One twin's training run in a fresh process, so both twins' time and memory are measured alike.

``python -m noshow.worker SPEC.json`` reads a job written by :mod:`noshow.compare`: data file,
split, backend, config, seeds, thread count. It pins the thread count before importing any numeric
library, records resident memory after the imports, trains one model per seed, and writes
``<backend>.json`` (costs, histories) and ``<backend>_seed<S>_<part>.npy`` (validation and test
probabilities) into the job's folder. Peak memory is the process's peak RSS (``getrusage``), the
same measure for both twins.
"""

from __future__ import annotations

import json
import os
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def rss_mb() -> float:
    """Current resident set size of this process in MB (10^6 bytes)."""
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def _import_stack(backend: str) -> None:
    """Import everything training needs, so 'memory after imports' covers it all."""
    import numpy  # noqa: F401
    import polars  # noqa: F401
    import sklearn.metrics  # noqa: F401

    import noshow.model  # noqa: F401

    if backend == "torch":
        import torch  # noqa: F401


def run(spec: dict) -> dict:
    """Train ``spec['backend']`` once per seed; return costs and histories (see module doc)."""
    _import_stack(spec["backend"])
    import_rss = rss_mb()
    if spec["backend"] == "torch":
        import torch

        torch.set_num_threads(spec["threads"])

    import numpy as np

    from noshow.data import load
    from noshow.model import prepare, sigmoid64, train_model
    from noshow.nn.config import MLPConfig

    data = load(spec["data"])
    base = MLPConfig.from_dict(spec["config"])
    prepared = prepare(data, spec["split"], spec["split_seed"], base.dtype)
    runs = []
    for seed in spec["seeds"]:
        config = MLPConfig.from_dict({**spec["config"], "seed": seed})
        model, result = train_model(prepared, spec["backend"], config, progress=spec["progress"],
                                    device=spec["device"])
        for part in ("val", "test"):
            X, _ = prepared.part(part)
            probability = sigmoid64(model.predict_logits(X, spec["backend"], spec["device"]))
            np.save(os.path.join(spec["out"], f"{spec['backend']}_seed{seed}_{part}.npy"), probability)
        runs.append({
            "seed": seed,
            "threshold": model.threshold,
            "train_seconds": result.train_seconds,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "history": [vars(h) for h in result.history],
        })
    return {"backend": spec["backend"], "threads": spec["threads"], "import_rss_mb": import_rss,
            "peak_rss_mb": peak_rss_mb(), "runs": runs}


def main(argv: list[str]) -> int:
    with open(argv[0]) as handle:
        spec = json.load(handle)
    started = time.perf_counter()
    result = run(spec)
    result["process_seconds"] = time.perf_counter() - started
    with open(os.path.join(spec["out"], f"{spec['backend']}.json"), "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    # Thread pools are sized when numpy / torch load, so pin them before any import.
    with open(sys.argv[1]) as _handle:
        _threads = str(json.load(_handle)["threads"])
    for _name in THREAD_VARIABLES:
        os.environ[_name] = _threads
    sys.exit(main(sys.argv[1:]))
