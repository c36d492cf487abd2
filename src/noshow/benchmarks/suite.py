"""``noshow bench``: speed and memory of the twins, measured, saved to ``bench.json`` with a figure.

Measured on the real file when given (else synthetic data), with the same thread count for all:

- seconds per epoch at the default architecture and batch size: the NumPy twin and the PyTorch twin
  (each in a fresh worker process, validation off) and scikit-learn's ``MLPClassifier`` with the
  same layers, batch size, optimiser (Adam), learning rate and L2; the median of ``repeats`` runs;
- the BLAS floor: the seconds an epoch's float32 matrix products alone take (forward and backward
  at the same widths, batch size and thread count, the first layer's input gradient skipped as the
  twins skip it), measured in the same run, and each timing as a multiple of it and in GFLOP/s;
- NumPy's element-wise floor: the least element-wise work of the same epoch in NumPy, which runs on
  one core, so that floor + it is the least any NumPy network of these shapes can take;
- each twin's epoch with dropout off, which shows what its dropout masks cost;
- peak and after-import resident memory of each twin's training process, as ``compare`` measures it;
- the wall time of ``noshow compare`` (1 seed) end to end, in a fresh process;
- optionally (``--scale``), writing, streamed training and scoring of synthetic data of growing
  size (:mod:`noshow.benchmarks.scale`); with ``--merge``, only these, written into an existing
  ``bench.json`` whose other measurements are kept (:func:`merge_scale`).
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

from noshow.data.loader import Appointments
from noshow.data.prepare import Prepared, prepare
from noshow.evaluation.compare import TWINS, machine, run_twin
from noshow.files import atomic_path, write_json
from noshow.nn.config import MLPConfig, dropout_levels
from noshow.training.worker import save_parts

BENCH_EPOCHS = 5


def speed_and_memory(prepared: Prepared, config: MLPConfig, threads: int, repeats: int) -> dict:
    """Seconds per epoch (median of ``repeats``) of the twins, MLPClassifier and the BLAS floor, and
    the twins' memory.

    The repeats are interleaved (floor, numpy, torch, sklearn, floor, ...) so that the shared
    machine's slow spells fall on all of them alike; each twin runs in a fresh process every time.
    """
    # The default model, members included, as compare trains it: its peak RSS is compare's. Seconds
    # per epoch are per network (an ensemble's epochs are those of all its members).
    timed = replace(config, epochs=BENCH_EPOCHS, patience=0)
    undropped = replace(timed, dropout=0.0)
    n_train, width = len(prepared.split.train), prepared.features.width
    runs: dict[str, list] = {name: [] for name in (FLOOR, ELEMENTWISE, LANES, *TWINS, *UNDROPPED.values(), "sklearn_mlp")}
    with tempfile.TemporaryDirectory(prefix="noshow-bench-") as tmp:
        folder = Path(tmp)
        save_parts(folder, prepared.features, prepared.y, prepared.split)
        for _ in range(repeats):
            runs[FLOOR].append(blas_floor_seconds(n_train, width, config, threads))
            runs[ELEMENTWISE].append(elementwise_floor_seconds(n_train, width, config))
            runs[LANES].append(torch_dropout_lanes_seconds(n_train, config, threads))
            for twin in TWINS:
                runs[twin].append(run_twin(twin, width, timed, [config.seed], threads, "cpu",
                                           False, folder, validate=False))
                runs[UNDROPPED[twin]].append(run_twin(twin, width, undropped, [config.seed], threads, "cpu",
                                                       False, folder, validate=False))
            runs["sklearn_mlp"].append(sklearn_epoch_seconds(prepared, config, threads))

    def per_epoch(run: dict) -> float:
        return run["runs"][0]["train_seconds"] / run["runs"][0]["epochs_run"]

    seconds = {name: [per_epoch(r) for r in runs[name]] if name in (*TWINS, *UNDROPPED.values()) else runs[name]
               for name in runs}
    median = {name: statistics.median(values) for name, values in seconds.items()}
    floor, elementwise, lanes = median.pop(FLOOR), median.pop(ELEMENTWISE), median.pop(LANES)
    without_dropout = {twin: median.pop(name) for twin, name in UNDROPPED.items()}
    flop = epoch_flop(n_train, width, config)
    return {
        "seconds_per_epoch": median,
        "seconds_per_epoch_runs": seconds,
        "blas_floor_seconds_per_epoch": floor,
        "floor_ratio": {name: median[name] / floor for name in (*TWINS, "sklearn_mlp")},
        "numpy_elementwise_floor_seconds_per_epoch": elementwise,
        "seconds_per_epoch_without_dropout": without_dropout,
        "torch_dropout_lanes_seconds_per_epoch": lanes,
        "gflop_per_epoch": flop / 1e9,
        "gflops": {FLOOR: flop / floor / 1e9, **{name: flop / s / 1e9 for name, s in median.items()}},
        "peak_rss_mb": {t: statistics.median(r["peak_rss_mb"] for r in runs[t]) for t in TWINS},
        "import_rss_mb": {t: statistics.median(r["import_rss_mb"] for r in runs[t]) for t in TWINS},
    }


FLOOR = "blas_floor"
ELEMENTWISE = "numpy_elementwise_floor"
LANES = "torch_dropout_lanes"
UNDROPPED = {twin: f"{twin}_without_dropout" for twin in TWINS}  # the twins' runs with dropout off


def _layer_widths(width: int, config: MLPConfig) -> list[int]:
    return [width, *config.hidden, 1]


def epoch_flop(n_rows: int, width: int, config: MLPConfig) -> float:
    """Floating-point operations of one epoch's matrix products: 2 per multiply-add, forward
    (n x fan_in x fan_out per layer), weight gradients (the same) and input gradients of every
    layer but the first (its input is data)."""
    widths = _layer_widths(width, config)
    per_row = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))  # forward
    per_row += per_row  # weight gradients
    per_row += sum(2 * a * b for a, b in zip(widths[1:-1], widths[2:]))  # input gradients, layers 2..L
    return float(n_rows) * per_row


def blas_floor_seconds(n_rows: int, width: int, config: MLPConfig, threads: int, epochs: int = 2) -> float:
    """Seconds per epoch of the matrix products alone: for every mini-batch of an epoch of
    ``n_rows`` rows, the forward product of each layer, its weight gradient and (but for the first
    layer) its input gradient, in float32 with NumPy's BLAS on ``threads`` threads; the best of
    ``epochs`` epochs after a warm-up batch. Nothing else (activations, dropout, loss, optimiser,
    batch assembly) runs: no network at these shapes can train faster on this BLAS."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    widths = _layer_widths(width, config)
    batch = min(config.batch_size, n_rows)
    # Scaled like an initialised network, and recomputed from fixed inputs every batch, so no value
    # drifts towards overflow or denormals (which would time something else).
    weights = [(rng.standard_normal((b, a)) / np.sqrt(a)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
    outputs = [rng.standard_normal((batch, w)).astype(np.float32) for w in widths]  # [0]: the input batch
    grads = [rng.standard_normal((batch, w)).astype(np.float32) for w in widths]  # [-1]: dL/dlogits
    weight_grads = [np.empty_like(w) for w in weights]

    def step(m: int) -> None:
        for k, w in enumerate(weights):
            np.matmul(outputs[k][:m], w.T, out=outputs[k + 1][:m])
        for k in range(len(weights) - 1, -1, -1):
            np.matmul(grads[k + 1][:m].T, outputs[k][:m], out=weight_grads[k])
            if k:
                np.matmul(grads[k + 1][:m], weights[k], out=grads[k][:m])

    best = np.inf
    with threadpool_limits(threads):
        step(batch)
        for _ in range(epochs):
            started = time.perf_counter()
            for start in range(0, n_rows, batch):
                step(min(batch, n_rows - start))
            best = min(best, time.perf_counter() - started)
    return best


def elementwise_floor_seconds(n_rows: int, width: int, config: MLPConfig, epochs: int = 2) -> float:
    """Seconds per epoch of the least element-wise work a NumPy network of the twins' shapes does in
    training, without any matrix product; the best of ``epochs`` epochs.

    Per mini-batch, each operation once, in place, in its fastest NumPy form: gather the batch's
    rows (from a dense float32 matrix, the cheapest gather); per hidden layer, add the bias, draw
    the dropout lanes and apply ReLU and dropout as one 0/1 mask (two comparisons, an and, a
    multiply; the mask's scale left out); the logits' loss gradient; per hidden layer, the mask
    applied to the incoming gradient and the bias gradient summed; one AdamW step over all
    parameters as the NumPy twin takes it (in place on one flat array: the dozen passes AdamW's
    formula needs). The mask is ReLU's, the default activation (the others cost more); without
    dropout no bits are drawn. NumPy runs element-wise operations on one core whatever the thread
    count, so the BLAS floor plus this is the least a NumPy network of these shapes, driven from one
    Python thread, can take per epoch.
    """
    from noshow.nn.numpy_mlp import Adam, sigmoid

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_rows, width), dtype=np.float32)
    order = rng.permutation(n_rows)
    batch = min(config.batch_size, n_rows)
    widths = _layer_widths(width, config)
    n_parameters = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    parameters = np.zeros(n_parameters, np.float32)
    gradients = rng.standard_normal(n_parameters, dtype=np.float32)
    optimizer = Adam(config.lr, weight_decay=config.weight_decay, decoupled=True)
    # Pre-activations fixed, outputs recomputed from them every batch, as in the BLAS floor.
    pre = [rng.standard_normal((batch, w), dtype=np.float32) for w in config.hidden]
    out = [np.empty_like(a) for a in pre]
    bias = [np.zeros(w, np.float32) for w in config.hidden]
    bias_grad = [np.empty(w, np.float32) for w in config.hidden]
    kept = [np.empty(a.shape, bool) for a in pre]
    positive = [np.empty(a.shape, bool) for a in pre]
    logits = rng.standard_normal(batch, dtype=np.float32)
    rows = np.empty((batch, width), np.float32)
    threshold = 2 * dropout_levels(config.dropout)[0]  # on 16-bit lanes, as the NumPy twin reads them
    bits = np.random.default_rng(1).bit_generator

    def step(idx: np.ndarray) -> None:
        m = len(idx)
        np.take(X, idx, axis=0, out=rows[:m])
        for a, o, b, k, p in zip(pre, out, bias, kept, positive):
            o, k, p = o[:m], k[:m], p[:m]
            np.add(a[:m], b, out=o)
            np.greater(o, 0, out=p)
            if threshold:
                lanes = bits.random_raw((o.size + 3) // 4).view(np.uint16)[: o.size].reshape(o.shape)
                np.greater_equal(lanes, threshold, out=k)
                np.logical_and(p, k, out=p)
            np.multiply(o, p, out=o)
        sigmoid(logits[:m])
        for o, g, p in zip(out, bias_grad, positive):
            np.multiply(o[:m], p[:m], out=o[:m])  # o stands in for the incoming gradient
            np.sum(o[:m], axis=0, out=g)
        optimizer.step({"network": parameters}, {"network": gradients})

    best = np.inf
    step(order[:batch])  # warm-up, as for the BLAS floor
    for _ in range(epochs):
        started = time.perf_counter()
        for start in range(0, n_rows, batch):
            step(order[start:start + batch])
        best = min(best, time.perf_counter() - started)
    return best


def torch_dropout_lanes_seconds(n_rows: int, config: MLPConfig, threads: int, epochs: int = 2) -> float:
    """Seconds per epoch that the PyTorch twin's dropout lanes take to draw, alone (the random bits of
    every hidden unit of every batch, :func:`noshow.nn.torch_mlp.random_lanes`); the best of
    ``epochs``. In a fresh process (:mod:`noshow.benchmarks.dropout_lanes`): PyTorch's thread pool
    would share this one with NumPy's BLAS."""
    command = [sys.executable, "-m", "noshow.benchmarks.dropout_lanes", "--threads", str(threads), "--rows", str(n_rows),
               "--batch", str(min(config.batch_size, n_rows)), "--hidden", ",".join(map(str, config.hidden)),
               "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout))


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


def compare_seconds(data_path: str | None) -> float:
    """Wall time of ``noshow compare`` with 1 seed, exactly as a user runs it (fresh process, its
    default threads: the twins side by side, half the CPUs each)."""
    with tempfile.TemporaryDirectory(prefix="noshow-bench-compare-") as tmp:
        command = [sys.executable, "-m", "noshow", "compare", "--quiet", "--out", tmp]
        if data_path:
            command += ["--data", data_path]
        started = time.perf_counter()
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started


def run_bench(data: Appointments, threads: int, repeats: int = 5, scale: list[int] | None = None,
              progress: bool = True) -> dict:
    """Every measurement of :mod:`noshow.benchmarks.suite`; returns the content of ``bench.json``."""
    config = MLPConfig()
    prepared = prepare(data, "random", 0, config.dtype)
    say = reporter(progress)
    say(f"timing the twins and scikit-learn's MLPClassifier ({repeats} interleaved repeats)")
    measured = speed_and_memory(prepared, config, threads, repeats)
    say("timing noshow compare end to end")
    result = {
        "data": {"source": data.source, "synthetic": data.synthetic, "rows": len(data), "n_train": len(prepared.split.train)},
        "config": config.to_dict(),
        **measured,
        "compare_seconds": compare_seconds(None if data.synthetic else data.source),
        "machine": {**machine(), "threads": threads, "repeats": repeats, "epochs_timed": BENCH_EPOCHS},
    }
    if scale:
        result.update(scale_results(scale, threads, say))
    spe = result["seconds_per_epoch"]
    result["ratios"] = {"numpy_over_torch": spe["numpy"] / spe["torch"],
                        "sklearn_over_numpy": spe["sklearn_mlp"] / spe["numpy"],
                        "sklearn_over_torch": spe["sklearn_mlp"] / spe["torch"]}
    return result


SCALE_KEYS = ("synth", "scaling", "predict", "scale_machine")  # what scale_results measures


def scale_results(scale: list[int], threads: int, say=lambda text: None) -> dict:
    """The ``synth``, ``scaling`` and ``predict`` lists of ``bench.json`` for synthetic files of
    ``scale`` rows (:func:`noshow.benchmarks.scale.scale_runs`), each ``predict`` record with its
    ``over_training`` (:func:`predict_over_training`), and ``scale_machine``: when, on what and
    with how many threads they were measured."""
    import datetime as dt

    from noshow.benchmarks.scale import scale_runs

    result: dict = {"synth": [], "scaling": [], "predict": [],
                    "scale_machine": {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                      **machine(), "threads": threads}}
    for rows in scale:
        say(f"writing, streamed training and scoring of {rows:,} synthetic rows")
        for key, records in scale_runs(rows, threads).items():
            result[key] += records
    for run in result["predict"]:
        run["over_training"] = predict_over_training(result, run)
    return result


def saved_bench(path: Path) -> dict:
    """The content of a ``bench.json`` that ``noshow bench`` wrote (a user error otherwise)."""
    from noshow.errors import NoshowError

    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise NoshowError(f"{path}: cannot read a bench.json to merge into ({exc})") from None
    if not isinstance(result, dict) or "seconds_per_epoch" not in result:
        raise NoshowError(f"{path}: not a bench.json written by noshow bench")
    return result


def merge_scale(measured: dict, path: Path) -> list[Path]:
    """Put :func:`scale_results`' keys into the saved ``bench.json`` at ``path`` (its other
    measurements kept as they are) and redraw ``bench.png`` beside it."""
    result = saved_bench(path)
    result.update({key: measured[key] for key in SCALE_KEYS})
    return write(result, Path(path).parent)


def reporter(progress: bool):
    """A function that prints ``bench: TEXT`` on stderr when ``progress``, else does nothing."""
    return (lambda text: print(f"bench: {text}", file=sys.stderr, flush=True)) if progress else (lambda text: None)


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaling = result.get("scaling", [])
    fig, axes = plt.subplots(1, 3 if scaling else 2, figsize=(14 if scaling else 9, 3.8))
    names = ["numpy", "torch", "sklearn_mlp"]
    axes[0].bar(names, [result["seconds_per_epoch"][n] for n in names], color=["tab:blue", "tab:orange", "tab:grey"])
    floor = result.get("blas_floor_seconds_per_epoch")
    if floor:
        axes[0].axhline(floor, color="black", linestyle="--", linewidth=1)
        label = {"ha": "right", "va": "bottom", "fontsize": 8, "bbox": {"facecolor": "white", "edgecolor": "none", "pad": 1}}
        axes[0].text(2.45, floor, f"BLAS floor {floor:.3f} s", **label)
        for i, n in enumerate(names):
            axes[0].text(i, result["seconds_per_epoch"][n], f"{result['seconds_per_epoch'][n] / floor:.2f}x",
                         ha="center", va="bottom", fontsize=8)
        elementwise = result.get("numpy_elementwise_floor_seconds_per_epoch")
        if elementwise:
            least = floor + elementwise
            axes[0].axhline(least, color="tab:blue", linestyle=":", linewidth=1)
            axes[0].text(2.45, least, f"least for NumPy {least / floor:.2f}x", color="tab:blue", **label)
    axes[0].set(title="seconds per epoch (median) and the floor", ylabel="seconds")
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


# Sections of bench.json that other benchmarks merge in (bench/serve); rewriting the file keeps them.
MERGED_SECTIONS = ("serve",)


def write(result: dict, out: Path) -> list[Path]:
    """``bench.json`` and ``bench.png`` in the folder ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else {}
    # What this run did not measure (the runs at scale without --scale, the service) stays as saved.
    kept = [k for k in (*MERGED_SECTIONS, *SCALE_KEYS) if k in previous and k not in result]
    result = {**result, **{k: previous[k] for k in kept}}
    write_json(out / "bench.json", result)
    figure(result, out / "bench.png")
    return [out / "bench.json", out / "bench.png"]


def scale_summary(result: dict) -> list[str]:
    """Lines of the ``synth``, ``scaling`` and ``predict`` records."""
    lines = []
    for w in result.get("synth", []):
        lines.append(f"synth    {w['rows']:>12,} rows: {w['seconds']:.1f} s, peak {w['peak_rss_mb']:.0f} MB")
    for s in result.get("scaling", []):
        lines.append(f"streamed {s['rows']:>12,} rows: {s['seconds']:.1f} s, peak {s['peak_rss_mb']:.0f} MB")
    for p in result.get("predict", []):
        ratio = predict_over_training(result, p)
        versus = "" if ratio is None else f", {ratio:.2f}x the streamed training's features + 1 epoch"
        lines.append(f"predict  {p['rows']:>12,} rows, reasons {p.get('reasons', 'all')}: {p['seconds']:.1f} s "
                     f"({p['rows'] / p['seconds']:,.0f} rows/s{versus}), peak {p['peak_rss_mb']:.0f} MB")
    return lines


def predict_over_training(result: dict, run: dict) -> float | None:
    """Seconds of the ``predict`` record ``run`` over those of the same run's streamed training of
    as many rows (features plus one epoch: the ``scaling`` record's ``seconds``); None without one."""
    trained = [s["seconds"] for s in result.get("scaling", []) if s["rows"] == run["rows"]]
    return run["seconds"] / trained[0] if trained else None


def merge_section(path: Path, name: str, section: dict) -> Path:
    """Put ``section`` into the bench.json at ``path`` under ``name`` (one of :data:`MERGED_SECTIONS`),
    keeping the rest of the file."""
    if name not in MERGED_SECTIONS:
        raise ValueError(f"{name!r} is not a section other benchmarks merge into bench.json")
    result = json.loads(path.read_text()) if path.exists() else {}
    result[name] = section
    return write_json(path, result)


def summary(result: dict) -> str:
    spe, r = result["seconds_per_epoch"], result["ratios"]
    lines = [
        f"seconds per epoch (median): numpy {spe['numpy']:.3f}, torch {spe['torch']:.3f}, "
        f"sklearn MLPClassifier {spe['sklearn_mlp']:.3f}",
        f"  numpy/torch {r['numpy_over_torch']:.2f}x; "
        f"sklearn is {r['sklearn_over_numpy']:.1f}x numpy, {r['sklearn_over_torch']:.1f}x torch",
    ]
    if "blas_floor_seconds_per_epoch" in result:
        floor, fr, gf = result["blas_floor_seconds_per_epoch"], result["floor_ratio"], result["gflops"]
        lines.append(f"BLAS floor {floor:.3f} s per epoch ({gf['blas_floor']:.0f} GFLOP/s): "
                     f"numpy {fr['numpy']:.2f}x, torch {fr['torch']:.2f}x, sklearn {fr['sklearn_mlp']:.2f}x the floor "
                     f"({gf['numpy']:.0f} / {gf['torch']:.0f} / {gf['sklearn_mlp']:.0f} GFLOP/s)")
    if "numpy_elementwise_floor_seconds_per_epoch" in result:
        least = 1 + result["numpy_elementwise_floor_seconds_per_epoch"] / floor
        off = result["seconds_per_epoch_without_dropout"]
        lanes = result["torch_dropout_lanes_seconds_per_epoch"]
        lines.append(f"  NumPy's element-wise floor {result['numpy_elementwise_floor_seconds_per_epoch']:.3f} s: "
                     f"no NumPy network of these shapes with dropout under {least:.2f}x the floor; dropout off: "
                     f"numpy {off['numpy'] / floor:.2f}x, torch {off['torch'] / floor:.2f}x; "
                     f"torch's dropout lanes alone {lanes / floor:.2f}x")
    lines += [
        f"peak RSS: numpy {result['peak_rss_mb']['numpy']:.0f} MB, torch {result['peak_rss_mb']['torch']:.0f} MB "
        f"(after imports {result['import_rss_mb']['numpy']:.0f} / {result['import_rss_mb']['torch']:.0f} MB)",
        f"noshow compare, 1 seed: {result['compare_seconds']:.1f} s",
    ]
    return "\n".join(lines + scale_summary(result))
