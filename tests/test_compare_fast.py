"""What compare does faster gives the same numbers: the bootstrap intervals (one ranking, counts per
resample) and the boosted trees' compact inputs (category numbers instead of one-hot columns)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from noshow.stats.metrics import INTERVAL_METRICS, bootstrap_ci


def _sklearn_bootstrap(y, p, threshold, n_boot, seed):
    """The definition: scikit-learn's average precision and F1 of each resample of the rows."""
    rng = np.random.default_rng(seed)
    predicted = (p >= threshold).astype(int)
    draws = {name: [] for name in INTERVAL_METRICS}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        draws["pr_auc"].append(skm.average_precision_score(y[idx], p[idx]))
        draws["f1"].append(skm.f1_score(y[idx], predicted[idx], zero_division=0))
    return {name: [np.percentile(v, 2.5), np.percentile(v, 97.5)] for name, v in draws.items()}


def test_bootstrap_intervals_equal_scikit_learn_resampling_with_tied_scores():
    rng = np.random.default_rng(3)
    y = (rng.random(3000) < 0.2).astype(int)
    p = np.round(np.clip(0.2 + 0.3 * (y - 0.2) + rng.normal(0, 0.2, 3000), 0, 1), 2)  # many ties
    fast, slow = bootstrap_ci(y, p, 0.3, n_boot=50, seed=5), _sklearn_bootstrap(y, p, 0.3, 50, 5)
    for name in INTERVAL_METRICS:
        np.testing.assert_allclose(fast[name], slow[name], rtol=0, atol=1e-12)


def test_bootstrap_skips_resamples_with_one_class():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(0.9, 0.1, 8)
    fast, slow = bootstrap_ci(y, p, 0.5, n_boot=30, seed=1), _sklearn_bootstrap(y, p, 0.5, 30, 1)
    for name in INTERVAL_METRICS:
        np.testing.assert_allclose(fast[name], slow[name], rtol=0, atol=1e-12)


def test_tree_inputs_number_each_category_as_its_one_hot_column(small_data):
    from noshow.data.features import CATEGORICAL
    from noshow.data.prepare import prepare
    from noshow.evaluation.compare import tree_inputs

    prepared = prepare(small_data)
    X = prepared.features
    columns, categorical = tree_inputs(X, prepared.pipeline)
    dense_width = X.dense.shape[1]
    assert columns.shape == (len(X), dense_width + len(CATEGORICAL))
    assert not categorical[:dense_width].any() and categorical[dense_width:].all()
    np.testing.assert_array_equal(columns[:, :dense_width], X.dense)
    names = prepared.pipeline.feature_names
    full = X.to_array(np.float64)
    for j, name in enumerate(CATEGORICAL):
        group = [i for i, column in enumerate(names) if column.startswith(f"{name}=")]
        np.testing.assert_array_equal(columns[:, dense_width + j], full[:, group].argmax(axis=1))


def test_twins_side_by_side_give_the_results_of_one_at_a_time(small_data):
    from noshow.evaluation.compare import compare
    from noshow.nn.config import MLPConfig

    config = MLPConfig(hidden=(16,), epochs=3, members=1)
    runs = {mode: compare(small_data, config, threads=1, progress=False, side_by_side=mode)[0] for mode in (True, False)}
    assert runs[True]["machine"]["twins_side_by_side"] and not runs[False]["machine"]["twins_side_by_side"]
    # Side by side, the references train while the slower twin still runs, on the other's CPUs.
    for name in ("numpy", "torch", "logistic_regression", "gradient_boosting"):
        assert runs[True]["models"][name]["pr_auc"] == runs[False]["models"][name]["pr_auc"]
        assert runs[True]["models"][name]["threshold"] == runs[False]["models"][name]["threshold"]


def test_a_failed_twin_stops_the_other_and_skips_the_references(small_data, tmp_path):
    import psutil
    import pytest

    from noshow.data.prepare import prepare
    from noshow.evaluation.compare import run_twins
    from noshow.nn.config import MLPConfig
    from noshow.training.worker import save_parts

    prepared = prepare(small_data)
    save_parts(tmp_path, prepared.features, prepared.y, prepared.split)
    called = []
    # The PyTorch twin cannot start on a device this machine lacks; the NumPy twin would train for minutes.
    config = MLPConfig(hidden=(64,), epochs=20_000, patience=0, members=1)
    with pytest.raises(RuntimeError, match="torch worker failed"):
        run_twins(prepared.features.width, config, [0], 1, "no-such-device", False, tmp_path, True,
                  meanwhile=lambda: called.append(1))
    assert called == []
    assert not (tmp_path / "numpy.json").exists()  # stopped, not waited for
    assert psutil.Process().children() == []
