"""One twin's training run in a fresh process, so both twins' time and memory are measured alike.

``python -m noshow.training.worker SPEC.json`` reads a job written by :mod:`noshow.evaluation.compare`: a folder of
prepared features (the parent builds them once, so both twins get the very same arrays), backend,
config, seeds, thread count. It pins the thread count before importing any numeric library,
imports only what training needs (NumPy and tqdm, plus PyTorch for the PyTorch twin; neither the
data libraries nor SciPy), records resident memory after the imports, trains one model (all its
ensemble members) per seed, and writes
``<backend>.json`` (costs, histories) and ``<backend>_seed<S>_<part>.npy`` (validation and test
probabilities) into the job's folder. Peak memory is the process's peak RSS (see :func:`peak_rss_mb`), the
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
    """Peak resident set size of this process in MB.

    On Linux this is ``VmHWM`` from /proc/self/status, the high-water mark of this program's own
    address space. ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a worker started by
    fork + exec would report its parent's size if the parent was larger (seen here: 299 MB
    reported for a worker that never exceeded 60 MB). Elsewhere we fall back to ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


PARTS = ("train", "val", "test")


def _import_stack(backend: str) -> None:
    """Import everything training needs, so 'memory after imports' covers it all."""
    import numpy  # noqa: F401
    import tqdm  # noqa: F401

    import noshow.training  # noqa: F401

    if backend == "torch":
        # torch.optim loads torch._dynamo (and sympy) when the first optimiser is built: 74 MB that
        # belong to the library, so they are imported, and counted, here.
        import torch._dynamo  # noqa: F401

        import noshow.nn.torch_mlp  # noqa: F401
    else:
        import noshow.nn.numpy_mlp  # noqa: F401


def save_parts(folder, features, y, split) -> None:
    """Write each part's compact features and labels for the workers (plain .npy, no pickle)."""
    import numpy as np

    for part in PARTS:
        idx = getattr(split, part)
        features.subset(idx).save(os.path.join(folder, part))
        np.save(os.path.join(folder, f"{part}.y.npy"), y[idx], allow_pickle=False)


def load_parts(folder, width: int) -> dict:
    import numpy as np

    from noshow.nn.encoded import Encoded

    return {part: (Encoded.load(os.path.join(folder, part), width),
                   np.load(os.path.join(folder, f"{part}.y.npy"), allow_pickle=False)) for part in PARTS}


def run(spec: dict) -> dict:
    """Train ``spec['backend']`` once per seed; return costs and histories (see module doc)."""
    _import_stack(spec["backend"])
    import_rss = rss_mb()
    # `python -m noshow.training.worker` imports the noshow.training package, hence NumPy and its
    # BLAS pool, before __main__ below can set the thread variables: the pool must be resized here.
    # (Unpinned, the NumPy twin ran on every CPU whatever --threads said: 5-8 s per epoch instead of
    # 0.9 s on this shared 2-CPU host, where two BLAS threads wait on each other.)
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(spec["threads"])
    blas_threads = max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=0)
    if spec["backend"] == "torch":
        import torch

        torch.set_num_threads(spec["threads"])

    import numpy as np

    from noshow.nn.config import MLPConfig
    from noshow.stats.metrics import sigmoid64
    from noshow.training import fit_ensemble, make_model

    parts = load_parts(spec["out"], spec["width"])
    (X, y), (X_val, y_val) = parts["train"], parts["val"]
    runs = []
    for seed in spec["seeds"]:
        config = MLPConfig.from_dict({**spec["config"], "seed": seed})
        model = make_model(spec["backend"], spec["width"], config, device=spec["device"])
        # Timing benchmarks turn validation off, to time epochs exactly as MLPClassifier runs them.
        validation = (X_val, y_val) if spec.get("validate", True) else (None, None)
        result = fit_ensemble(model, X, y, config, *validation, progress=spec["progress"],
                              label=f"{spec['backend']} seed {seed}")
        probability = {part: sigmoid64(model.predict_logits(parts[part][0])) for part in ("val", "test")}
        for part, p in probability.items():
            np.save(os.path.join(spec["out"], f"{spec['backend']}_seed{seed}_{part}.npy"), p)
        runs.append({
            "seed": seed,
            "train_seconds": result.train_seconds,  # all members
            "epochs_run": result.epochs_run,  # all members
            "best_epochs": result.best_epochs,
            "history": [vars(h) for h in result.history],  # the first member's
        })
    return {"backend": spec["backend"], "threads": spec["threads"], "blas_threads": blas_threads,
            "import_rss_mb": import_rss,
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
    from noshow.allocator import keep_freed_memory

    keep_freed_memory()
    sys.exit(main(sys.argv[1:]))
