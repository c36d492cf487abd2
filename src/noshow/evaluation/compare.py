"""``noshow compare``: the fair comparison of the twins, with reference models, on one split.

Protocol: one split, one feature pipeline fitted on its training rows, the same hyperparameters
and seeds for both twins; every threshold is chosen on validation data (maximum F1) and applied
unchanged to the test data; each twin trains in its own fresh process (:mod:`noshow.training.worker`) with
the same thread count, so time and memory are measured the same way for both.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from noshow.clinic.fairness import fairness_table, findings, subgroups
from noshow.clinic.policies import Capacity
from noshow.data import schema as S
from noshow.data.loader import Appointments
from noshow.data.prepare import Prepared, prepare
from noshow.errors import NoshowError
from noshow.evaluation import decisions as D
from noshow.nn.config import MLPConfig
from noshow.stats.calibration import expected_calibration_error, fit_calibrator
from noshow.stats.metrics import (
    CALIBRATION_METRICS,
    CONFUSION,
    INTERVAL_METRICS,
    SCALAR_METRICS,
    average_precision,
    bootstrap_ci,
    calibration_fit,
    calibration_fit_ci,
    classification_metrics,
    steady_f1_threshold,
)
from noshow.training import BACKENDS as TWINS
from noshow.training.worker import save_parts

SCHEMA_VERSION = 1
CALIBRATION_MIN_CLASS = 10  # no-shows and shows a (sub)group needs for a calibration slope and intercept
COST_METRICS = ("train_seconds", "epochs", "seconds_per_epoch", "seconds_to_95pct", "import_rss_mb", "peak_rss_mb")
# The fields of metrics.json that measure the machine rather than the model: wall times and memory.
# Every other field is identical when the same command and seed run again on the same machine.
VARYING_FIELDS = ("train_seconds", "seconds_per_epoch", "seconds_to_95pct", "import_rss_mb", "peak_rss_mb",
                  "seconds", "compare_seconds")


def without_varying_fields(value):
    """``value`` (metrics.json's content) with every :data:`VARYING_FIELDS` key removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_varying_fields(v) for k, v in value.items() if k not in VARYING_FIELDS}
    if isinstance(value, list):
        return [without_varying_fields(v) for v in value]
    return value

# Figures reported by the original study (not reruns; its splits and settings differed).
REPORTED = {
    "numpy": {"accuracy": 0.8010, "f1": 0.0140, "pr_auc": 0.2759, "peak_rss_mb": 451.25,
              "confusion_matrix": [[26512, 50], [6550, 47]]},
    "torch": {"accuracy": 0.5606, "f1": 0.3434, "pr_auc": 0.2645, "peak_rss_mb": 2095.13,
              "confusion_matrix": [[9852, 7817], [1897, 2540]]},
}


@dataclass
class ModelRun:
    """One model's predictions over seeds: per-seed test metrics and seed-0 curves."""

    name: str
    per_seed: list[dict] = field(default_factory=list)
    test_probability: np.ndarray | None = None  # first seed, for the figures
    uncalibrated: np.ndarray | None = None  # first seed before calibration (twins only)
    extra: dict = field(default_factory=dict)

    def add(self, y_val, p_val, y_test, p_test, threshold: float | None = None, seed: int = 0) -> None:
        """Score one seed: threshold from validation unless given, metrics on test."""
        if threshold is None:
            threshold = steady_f1_threshold(y_val, p_val)
        scores = classification_metrics(y_test, p_test, threshold)
        scores["seed"] = seed
        scores["ci95"] = bootstrap_ci(y_test, p_test, threshold, seed=seed)
        self.per_seed.append(scores)
        if self.test_probability is None:
            self.test_probability = np.asarray(p_test)

    def summary(self) -> dict:
        """Means over seeds (and std, per_seed and ci95 when there are several), per metrics.json."""
        keys = [*SCALAR_METRICS, *[k for k in (*CALIBRATION_METRICS, *COST_METRICS) if k in self.per_seed[0]]]
        out = {k: float(np.mean([s[k] for s in self.per_seed])) for k in keys}
        out[CONFUSION] = self.per_seed[0][CONFUSION]
        out["ci95"] = {m: [float(np.mean([s["ci95"][m][i] for s in self.per_seed])) for i in (0, 1)]
                       for m in INTERVAL_METRICS}
        if len(self.per_seed) > 1:
            out["std"] = {k: float(np.std([s[k] for s in self.per_seed], ddof=1)) for k in keys}
            out["per_seed"] = self.per_seed
        out.update(self.extra)
        return out


# --------------------------------------------------------------------------------------------------
# The twins, each in its own process


def _logit(probability: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities saved by a worker (float64; clipped away from 0 and 1)."""
    p = np.clip(np.asarray(probability, np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def seconds_to_fraction(history: list[dict], fraction: float = 0.95) -> float:
    """Seconds until validation PR AUC first reached ``fraction`` of its best value."""
    scores = [h["val_pr_auc"] for h in history]
    target = fraction * max(scores)
    return next(h["seconds"] for h in history if h["val_pr_auc"] >= target)


def run_twin(backend: str, width: int, config: MLPConfig, seeds: list[int], threads: int, device: str,
             progress: bool, folder: Path, validate: bool = True) -> dict:
    """Train one twin in a fresh ``python -m noshow.training.worker`` process on the features saved in
    ``folder``; return its JSON result."""
    return _finish_twin(_start_twin(backend, width, config, seeds, threads, device, progress, folder, validate))


def run_twins(width: int, config: MLPConfig, seeds: list[int], threads: int, device: str, progress: bool,
              folder: Path, side_by_side: bool, meanwhile=None) -> tuple[list[dict], object]:
    """Both twins' worker results, and what ``meanwhile()`` returned (None without it).

    One after the other, ``meanwhile`` runs after both. Side by side (both processes at once, each
    with ``threads`` threads and no progress bar, which would interleave), it runs in this process
    as soon as the first twin is done, on that twin's ``threads``: the CPUs stay as busy as they
    were, never oversubscribed, so the twin still training keeps its share and its timing.
    """
    if not side_by_side:
        results = [run_twin(b, width, config, seeds, threads, device, progress, folder) for b in TWINS]
        return results, meanwhile() if meanwhile else None
    if progress:
        print(f"noshow: training the {' and '.join(TWINS)} twins side by side, {threads} thread(s) each",
              file=sys.stderr, flush=True)
    started = [_start_twin(b, width, config, seeds, threads, device, False, folder) for b in TWINS]
    processes = [process for _, process, _, _ in started]
    try:
        done = None
        if meanwhile:
            from threadpoolctl import threadpool_limits

            _wait_for_one(processes)
            for worker in started:
                if worker[1].returncode not in (None, 0):
                    _finish_twin(worker)  # raises with the failed twin's message, without waiting for the other
            with threadpool_limits(threads):
                done = meanwhile()
        return [_finish_twin(worker) for worker in started], done
    except BaseException:
        for _, process, errors, _ in started:  # a failed twin or Ctrl+C leaves no other twin training
            process.kill()
            process.wait()
            if errors is not None:
                errors.close()
        raise


def _wait_for_one(processes: list[subprocess.Popen], poll_seconds: float = 0.1) -> None:
    """Return once any of ``processes`` has exited."""
    while all(process.poll() is None for process in processes):
        time.sleep(poll_seconds)


def _start_twin(backend: str, width: int, config: MLPConfig, seeds: list[int], threads: int, device: str,
                progress: bool, folder: Path, validate: bool = True) -> tuple:
    spec = {"backend": backend, "width": width, "config": config.to_dict(), "seeds": seeds, "threads": threads,
            "validate": validate,
            "device": device if backend == "torch" else "cpu", "progress": progress, "out": str(folder)}
    spec_path = folder / f"{backend}_spec.json"
    spec_path.write_text(json.dumps(spec))
    # A file, not a pipe, takes the worker's stderr: a pipe nobody reads could fill and stall it.
    errors = None if progress else open(folder / f"{backend}.stderr", "w+")
    process = subprocess.Popen([sys.executable, "-m", "noshow.training.worker", str(spec_path)], stderr=errors)
    return backend, process, errors, folder


def _finish_twin(worker: tuple) -> dict:
    backend, process, errors, folder = worker
    returncode = process.wait()
    message = ""
    if errors is not None:
        errors.seek(0)
        message = errors.read()
        errors.close()
    if returncode != 0:
        raise RuntimeError(f"{backend} worker failed (exit {returncode}): {message}")
    return json.loads((folder / f"{backend}.json").read_text())


def twin_run(result: dict, prepared: Prepared, folder: Path) -> ModelRun:
    """Metrics and costs of one twin from its worker's files."""
    run = ModelRun(result["backend"])
    y_val, y_test = prepared.y[prepared.split.val], prepared.y[prepared.split.test]
    for record in result["runs"]:
        seed = record["seed"]
        raw_val, raw_test = (np.load(folder / f"{result['backend']}_seed{seed}_{part}.npy") for part in ("val", "test"))
        # Calibrated on validation rows as a model for use is (strictly increasing: same order, same
        # PR AUC); the threshold is then max F1 on the calibrated validation probabilities.
        calibrator = fit_calibrator(_logit(raw_val), y_val)
        p_val, p_test = calibrator(_logit(raw_val)), calibrator(_logit(raw_test))
        run.add(y_val, p_val, y_test, p_test, seed=seed)
        run.per_seed[-1].update(
            ece=expected_calibration_error(y_test, p_test),
            ece_uncalibrated=expected_calibration_error(y_test, raw_test),
            brier_uncalibrated=float(np.mean((raw_test - y_test) ** 2)),
            pr_auc_uncalibrated=average_precision(y_test, raw_test),
        )
        if run.uncalibrated is None:
            run.uncalibrated = raw_test
        history = record["history"]
        run.per_seed[-1].update(
            train_seconds=record["train_seconds"],
            epochs=float(np.mean(record["best_epochs"])),
            seconds_per_epoch=record["train_seconds"] / record["epochs_run"],
            seconds_to_95pct=seconds_to_fraction(history),
            import_rss_mb=result["import_rss_mb"],
            peak_rss_mb=result["peak_rss_mb"],
        )
    run.extra["epochs_run"] = result["runs"][0]["epochs_run"]
    run.extra["history"] = result["runs"][0]["history"]
    run.extra["threads"] = result["threads"]
    return run


# --------------------------------------------------------------------------------------------------
# Reference models on the same split and features


def reference_runs(prepared: Prepared, seeds: list[int], bayes: np.ndarray | None) -> list[ModelRun]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    (X_train, y_train), (X_val, y_val), (X_test, y_test) = (prepared.part(p) for p in ("train", "val", "test"))
    trees = [tree_inputs(a, prepared.pipeline) for a in (X_train, X_val, X_test)]
    X_train, X_val, X_test = (a.to_array(np.float64) for a in (X_train, X_val, X_test))
    always = ModelRun("always_show")
    rate = float(y_train.mean())
    # Predicts "show" for everyone: a constant probability, threshold above it.
    always.add(y_val, np.full(len(y_val), rate), y_test, np.full(len(y_test), rate), threshold=1.0)
    runs = [always]
    makers = {
        "logistic_regression": lambda seed: LogisticRegression(max_iter=2000),
        "gradient_boosting": lambda seed: HistGradientBoostingClassifier(
            learning_rate=0.05, max_iter=500, max_leaf_nodes=31, early_stopping=True,
            validation_fraction=0.1, n_iter_no_change=20, random_state=seed, categorical_features=trees[0][1]),
    }
    inputs = {"logistic_regression": (X_train, X_val, X_test), "gradient_boosting": [X for X, _ in trees]}
    for name, make in makers.items():
        run = ModelRun(name)
        train, val, test = inputs[name]
        for seed in seeds:
            model = make(seed).fit(train, y_train)
            run.add(y_val, model.predict_proba(val)[:, 1], y_test, model.predict_proba(test)[:, 1], seed=seed)
        runs.append(run)
    if bayes is not None:
        run = ModelRun("bayes_limit")
        run.add(y_val, bayes[prepared.split.val], y_test, bayes[prepared.split.test])
        runs.append(run)
    return runs


def tree_inputs(X, pipeline) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of the boosted trees from compact features: the dense columns and, for each
    categorical feature, its category's number, declared categorical (a mask over the columns).

    Trees split numbers and categories natively, so the one-hot columns (and the one-hot bins of
    numeric features, which a tree's own splits already make) only cost time: on the real file the
    trees took 20-50 s on the 170 one-hot columns and 3 s on these 24, with a PR AUC no lower.
    """
    codes, start = [], X.dense.shape[1]
    for j, name in enumerate(pipeline.spec.categorical):  # the first one-hot groups, in this order
        codes.append(X.hot[:, j].astype(np.float64) - start)
        start += len(pipeline.vocabularies[name]) + 1
    columns = np.column_stack([X.dense.astype(np.float64), *codes])
    return columns, np.arange(columns.shape[1]) >= X.dense.shape[1]


# --------------------------------------------------------------------------------------------------
# The whole job


def machine() -> dict:
    """The machine and library versions a result was measured with (versions from the installed
    packages' metadata: importing torch only to read its version cost the parent 2.5 s)."""
    from importlib.metadata import version

    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "torch": version("torch"),
            "scikit-learn": version("scikit-learn")}


def compare(data: Appointments, config: MLPConfig, split: str = "random", split_seed: int = 0, seeds: int = 1,
            threads: int | None = None, device: str = "cpu", progress: bool = True,
            side_by_side: bool | None = None) -> tuple[dict, dict]:
    """Run the comparison; return (metrics.json content, seed-0 test probabilities by model).

    ``side_by_side`` (default: with 2 CPUs or more) trains the two twins at once, each with half
    the CPUs unless ``threads`` says otherwise. They then share the machine alike, so their costs
    stay comparable with each other, but seconds per epoch are not those of a twin alone: speed is
    measured by ``noshow bench``, one process at a time. One after the other, each twin gets
    ``threads`` (default: all CPUs).
    """
    if seeds < 1:
        raise NoshowError("--seeds must be at least 1")
    cpus = os.cpu_count() or 1
    side_by_side = cpus >= 2 if side_by_side is None else side_by_side
    threads = threads or (max(1, cpus // 2) if side_by_side else cpus)
    started = time.perf_counter()
    prepared = prepare(data, split, split_seed, dtype=config.dtype)
    seed_list = [config.seed + i for i in range(seeds)]
    with tempfile.TemporaryDirectory(prefix="noshow-compare-") as tmp:
        folder = Path(tmp)
        save_parts(folder, prepared.features, prepared.y, prepared.split)
        width = prepared.features.width
        bayes = data.frame[S.TRUE_PROBABILITY].to_numpy() if data.synthetic and data.has_true_probability else None
        # The references train on the CPUs of whichever twin finishes first (see run_twins).
        results, references = run_twins(width, config, seed_list, threads, device, progress, folder, side_by_side,
                                         meanwhile=lambda: reference_runs(prepared, seed_list, bayes))
        twins = [twin_run(result, prepared, folder) for result in results]
    runs = twins + references + [rule_run(prepared)]
    from noshow.evaluation.rolling import ORIGIN_DAYS, UPDATE_EPOCHS, rolling_both

    rolling_started = time.perf_counter()
    rolling = {"origin_days": ORIGIN_DAYS, "update_epochs": UPDATE_EPOCHS,
               "twins": rolling_both(data, config, TWINS, threads)}
    rolling["seconds"] = time.perf_counter() - rolling_started
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "data": {"source": data.source, "synthetic": data.synthetic, "sha256": data.sha256, "rows": len(data),
                 "positive_rate": float(prepared.y.mean()), "split": split, "split_seed": split_seed,
                 **prepared.split.sizes(), "seeds": seed_list, "n_features": prepared.features.width,
                 "first_day": str(data.frame[S.APPOINTMENT_DATE].min()),
                 "last_day": str(data.frame[S.APPOINTMENT_DATE].max())},
        "config": config.to_dict(),
        "models": {run.name: run.summary() for run in runs},
        "reported": REPORTED,
        "twin_agreement": twin_agreement(twins),
        "machine": {**machine(), "threads": threads, "device": device, "twins_side_by_side": side_by_side},
        **clinic_evaluation(prepared, twins),
        "calibration_fit": calibration_checks(prepared, twins),
        "calibration_fit_min_class": CALIBRATION_MIN_CLASS,
        "rolling_origin": rolling,
        "compare_seconds": time.perf_counter() - started,
    }
    curves = {run.name: run.test_probability for run in runs}
    curves.update({f"{run.name}_uncalibrated": run.uncalibrated for run in twins})
    curves["y_test"] = prepared.y[prepared.split.test]
    return metrics, curves


def rule_run(prepared: Prepared) -> ModelRun:
    """The rule a clinic can apply without a model, scored at its own operating point."""
    flags = D.rule_flags(prepared.raw)
    run = ModelRun(D.RULE_NAME)
    run.add(None, None, prepared.y[prepared.split.test], flags[prepared.split.test], threshold=0.5)
    return run


def clinic_evaluation(prepared: Prepared, twins: list[ModelRun]) -> dict:
    """What a clinic decides with each twin's seed-0 calibrated test probabilities: call lists at
    shares of each day, the decision curve, and the fairness audit of the 10% call list (the rule
    without a model gets the same call lists)."""
    test = prepared.split.test
    frame = prepared.data.frame[test]
    y = prepared.y[test]
    day = frame[S.APPOINTMENT_DATE].to_physical().to_numpy()
    ids = frame[S.APPOINTMENT_ID].to_numpy()
    groups = subgroups(frame, prepared.data.schema)
    rule = D.rule_flags(prepared.raw)[test]
    out = {"decisions": {D.RULE_NAME: D.call_lists(y, rule, day, ids)}, "decision_curve": {}, "fairness": {},
           "fairness_findings": {}, "fairness_call_share": D.CALL_LIST_SHARE}
    for run in twins:
        p = run.test_probability
        out["decisions"][run.name] = D.call_lists(y, p, day, ids)
        out["decision_curve"][run.name] = D.decision_curve(y, p)
        flagged = Capacity(call_share=D.CALL_LIST_SHARE).flags(p, day, ids, 0.5).astype(bool)
        out["fairness"][run.name] = fairness_table(y, p, flagged, groups)
        out["fairness_findings"][run.name] = findings(out["fairness"][run.name], float(flagged.mean()))
    return out


def calibration_checks(prepared: Prepared, twins: list[ModelRun]) -> dict:
    """Calibration-in-the-large and slope (:func:`~noshow.stats.metrics.calibration_fit`) of
    each twin's seed-0 calibrated test probabilities, with bootstrap 95% intervals, over all test
    rows and in each audited subgroup (:func:`noshow.clinic.fairness.subgroups`, in the fairness
    table's order). A group with fewer than :data:`CALIBRATION_MIN_CLASS` no-shows or shows gets
    no fit (None): a slope fitted on a handful of events says nothing, and its resamples separate."""
    test = prepared.split.test
    y = prepared.y[test]
    groups = subgroups(prepared.data.frame[test], prepared.data.schema)
    out = {}
    for run in twins:
        p = run.test_probability
        subgroup_rows = []
        for attribute, labels in groups.items():
            for group in sorted(set(labels.tolist()), key=str):
                mask = labels == group
                subgroup_rows.append({"attribute": attribute, "group": str(group),
                                      **_calibration_with_ci(y[mask], p[mask])})
        out[run.name] = {"overall": _calibration_with_ci(y, p), "subgroups": subgroup_rows}
    return out


def _calibration_with_ci(y: np.ndarray, p: np.ndarray) -> dict:
    rows, no_shows = int(len(y)), int(y.sum())
    if min(no_shows, rows - no_shows) < CALIBRATION_MIN_CLASS:
        return {"rows": rows, "no_shows": no_shows, "intercept": None, "slope": None, "ci95": None}
    fit = calibration_fit(y, p)
    return {"rows": rows, "no_shows": no_shows, "intercept": fit["intercept"], "slope": fit["slope"],
            "ci95": calibration_fit_ci(y, p)}


def twin_agreement(twins: list[ModelRun]) -> dict:
    """How closely the twins' seed-0 test probabilities and mean metrics agree."""
    a, b = twins
    summary_a, summary_b = a.summary(), b.summary()
    difference = np.abs(a.test_probability - b.test_probability)
    return {
        "max_abs_probability_difference": float(difference.max()),
        "mean_abs_probability_difference": float(difference.mean()),
        "pr_auc_difference": float(abs(summary_a["pr_auc"] - summary_b["pr_auc"])),
        "f1_difference": float(abs(summary_a["f1"] - summary_b["f1"])),
    }
