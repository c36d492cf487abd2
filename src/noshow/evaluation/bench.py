"""``noshow bench``: speed and memory of the twins, measured, saved to ``bench.json`` with a figure.

Measured on the real file when given (else synthetic data), with the same thread count for all:

- seconds per epoch at the default architecture and batch size: the NumPy twin and the PyTorch twin
  (each in a fresh worker process, validation off) and scikit-learn's ``MLPClassifier`` with the
  same layers, batch size, optimiser (Adam), learning rate and L2; the median of ``repeats`` runs;
- peak and after-import resident memory of each twin's training process, as ``compare`` measures it;
- the wall time of ``noshow compare`` (1 seed) end to end, in a fresh process;
- optionally (``--scale``), streamed training on synthetic data of growing size (:mod:`noshow.data.stream`).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from noshow.evaluation.compare import TWINS, machine, run_twin
from noshow.data.loader import Appointments
from noshow.files import atomic_path
from noshow.data.prepare import Prepared, prepare
from noshow.nn.config import MLPConfig
from noshow.training.worker import save_parts

BENCH_EPOCHS = 5


def speed_and_memory(prepared: Prepared, config: MLPConfig, threads: int, repeats: int) -> dict:
    """Seconds per epoch (median of ``repeats``) of the twins and MLPClassifier, and the twins' memory.

    The repeats are interleaved (numpy, torch, sklearn, numpy, ...) so that the shared machine's
    slow spells fall on all three alike; each twin runs in a fresh process every time.
    """
    # The default model, members included, as compare trains it: its peak RSS is compare's. Seconds
    # per epoch are per network (an ensemble's epochs are those of all its members).
    timed = replace(config, epochs=BENCH_EPOCHS, patience=0)
    runs: dict[str, list] = {name: [] for name in (*TWINS, "sklearn_mlp")}
    with tempfile.TemporaryDirectory(prefix="noshow-bench-") as tmp:
        folder = Path(tmp)
        save_parts(folder, prepared.features, prepared.y, prepared.split)
        for _ in range(repeats):
            for twin in TWINS:
                runs[twin].append(run_twin(twin, prepared.features.width, timed, [config.seed], threads, "cpu",
                                           False, folder, validate=False))
            runs["sklearn_mlp"].append(sklearn_epoch_seconds(prepared, config, threads))

    def per_epoch(run: dict) -> float:
        return run["runs"][0]["train_seconds"] / run["runs"][0]["epochs_run"]

    seconds = {"sklearn_mlp": runs["sklearn_mlp"], **{t: [per_epoch(r) for r in runs[t]] for t in TWINS}}
    return {
        "seconds_per_epoch": {name: statistics.median(values) for name, values in seconds.items()},
        "seconds_per_epoch_runs": seconds,
        "peak_rss_mb": {t: statistics.median(r["peak_rss_mb"] for r in runs[t]) for t in TWINS},
        "import_rss_mb": {t: statistics.median(r["import_rss_mb"] for r in runs[t]) for t in TWINS},
    }


def sklearn_epoch_seconds(prepared: Prepared, config: MLPConfig, threads: int) -> float:
    """Seconds per epoch of one ``sklearn.neural_network.MLPClassifier`` fit with the twins' settings."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    X, y = prepared.part("train")
    X = X.to_array(np.float32)
    model = MLPClassifier(hidden_layer_sizes=config.hidden, activation="relu", solver="adam",
                          alpha=config.weight_decay, batch_size=config.batch_size,
                          learning_rate_init=config.lr, max_iter=BENCH_EPOCHS, shuffle=True,
                          random_state=config.seed, early_stopping=False, tol=0.0,
                          n_iter_no_change=BENCH_EPOCHS + 1)
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        model.fit(X, y)
        return (time.perf_counter() - started) / model.n_iter_


def compare_seconds(data_path: str | None, threads: int) -> float:
    """Wall time of ``noshow compare`` with 1 seed, as a user runs it (fresh process)."""
    with tempfile.TemporaryDirectory(prefix="noshow-bench-compare-") as tmp:
        command = [sys.executable, "-m", "noshow", "compare", "--quiet", "--out", tmp, "--threads", str(threads)]
        if data_path:
            command += ["--data", data_path]
        started = time.perf_counter()
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started


def run_bench(data: Appointments, threads: int, repeats: int = 5, scale: list[int] | None = None,
              progress: bool = True) -> dict:
    """Every measurement of :mod:`noshow.evaluation.bench`; returns the content of ``bench.json``."""
    config = MLPConfig()
    prepared = prepare(data, "random", 0, config.dtype)
    say = (lambda text: print(f"bench: {text}", file=sys.stderr, flush=True)) if progress else (lambda text: None)
    say(f"timing the twins and scikit-learn's MLPClassifier ({repeats} interleaved repeats)")
    measured = speed_and_memory(prepared, config, threads, repeats)
    say("timing noshow compare end to end")
    result = {
        "data": {"source": data.source, "synthetic": data.synthetic, "rows": len(data), "n_train": len(prepared.split.train)},
        "config": config.to_dict(),
        **measured,
        "compare_seconds": compare_seconds(None if data.synthetic else data.source, threads),
        "scaling": [],
        "machine": {**machine(), "threads": threads, "repeats": repeats, "epochs_timed": BENCH_EPOCHS},
    }
    if scale:
        from noshow.data.stream import scaling_run

        for rows in scale:
            say(f"streamed training on {rows:,} synthetic rows")
            result["scaling"].append(scaling_run(rows, threads))
    spe = result["seconds_per_epoch"]
    result["ratios"] = {"numpy_over_torch": spe["numpy"] / spe["torch"],
                        "sklearn_over_numpy": spe["sklearn_mlp"] / spe["numpy"],
                        "sklearn_over_torch": spe["sklearn_mlp"] / spe["torch"]}
    return result


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaling = result["scaling"]
    fig, axes = plt.subplots(1, 3 if scaling else 2, figsize=(14 if scaling else 9, 3.8))
    names = ["numpy", "torch", "sklearn_mlp"]
    axes[0].bar(names, [result["seconds_per_epoch"][n] for n in names], color=["tab:blue", "tab:orange", "tab:grey"])
    axes[0].set(title="seconds per epoch (median)", ylabel="seconds")
    x = np.arange(2)
    axes[1].bar(x - 0.2, [result["import_rss_mb"][t] for t in TWINS], 0.4, label="after imports")
    axes[1].bar(x + 0.2, [result["peak_rss_mb"][t] for t in TWINS], 0.4, label="peak")
    axes[1].set_xticks(x, list(TWINS))
    axes[1].set(title="training process memory", ylabel="MB")
    axes[1].legend(fontsize=8)
    if scaling:
        rows = [s["rows"] for s in scaling]
        ax = axes[2]
        ax.loglog(rows, [s["seconds"] for s in scaling], marker="o", label="seconds")
        ax.loglog(rows, [s["peak_rss_mb"] for s in scaling], marker="s", label="peak RSS (MB)")
        ax.set(title="streamed training vs rows", xlabel="rows")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write(result: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "bench.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    figure(result, out / "bench.png")
    return [out / "bench.json", out / "bench.png"]


def summary(result: dict) -> str:
    spe, r = result["seconds_per_epoch"], result["ratios"]
    lines = [
        f"seconds per epoch (median): numpy {spe['numpy']:.3f}, torch {spe['torch']:.3f}, sklearn MLPClassifier {spe['sklearn_mlp']:.3f}",
        f"  numpy/torch {r['numpy_over_torch']:.2f}x; sklearn is {r['sklearn_over_numpy']:.1f}x numpy, {r['sklearn_over_torch']:.1f}x torch",
        f"peak RSS: numpy {result['peak_rss_mb']['numpy']:.0f} MB, torch {result['peak_rss_mb']['torch']:.0f} MB "
        f"(after imports {result['import_rss_mb']['numpy']:.0f} / {result['import_rss_mb']['torch']:.0f} MB)",
        f"noshow compare, 1 seed: {result['compare_seconds']:.1f} s",
    ]
    for s in result["scaling"]:
        lines.append(f"streamed {s['rows']:>12,} rows: {s['seconds']:.1f} s, peak {s['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
