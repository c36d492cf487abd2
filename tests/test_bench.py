"""noshow bench: its measurements and the bench.json it writes (small data; the numbers are not asserted)."""

from __future__ import annotations

import json

import pytest

from noshow.benchmarks import suite
from noshow.benchmarks.scale import scale_runs
from noshow.data.prepare import prepare
from noshow.nn.config import MLPConfig


@pytest.fixture(scope="module")
def measured(small_data) -> dict:
    """One measurement of the twins and scikit-learn's MLP (a fresh process each), shared by the tests."""
    return suite.speed_and_memory(prepare(small_data), MLPConfig(hidden=(16,)), threads=1, repeats=1)


def test_speed_and_memory_measure_each_twin_in_its_own_process(measured):
    assert set(measured["seconds_per_epoch"]) == {"numpy", "torch", "sklearn_mlp"}
    assert all(v > 0 for v in measured["seconds_per_epoch"].values())
    # PyTorch's own import is far heavier than NumPy's: the twins' processes really are separate.
    assert measured["import_rss_mb"]["torch"] > measured["import_rss_mb"]["numpy"] + 100
    assert measured["peak_rss_mb"]["numpy"] >= measured["import_rss_mb"]["numpy"]


def test_scale_runs_write_train_streamed_and_score_every_row_in_fresh_processes():
    runs = scale_runs(3000, threads=1)
    (written,), (trained,), scored = runs["synth"], runs["scaling"], runs["predict"]
    assert [s["reasons"] for s in scored] == ["all", "flagged"]
    assert written["rows"] == trained["rows"] == 3000
    assert all(s["rows"] == s["scored"] == 3000 and s["members"] == 3 for s in scored)
    assert all(r["peak_rss_mb"] > 0 and r["seconds"] > 0 and r["load_before"] >= 0 for rs in runs.values() for r in rs)
    assert 0.6 < trained["n_train"] / 3000 < 0.8
    # Each stage timed; flagged rows only: fewer reason passes.
    every, flagged = (s["stages"] for s in scored)
    assert {"parse", "history", "features", "scores", "reason passes", "reason words", "writing"} <= set(every)
    assert sum(every.values()) <= scored[0]["seconds"]
    assert flagged["reason passes"] < every["reason passes"]


def test_predict_is_set_against_the_same_runs_streamed_training_of_as_many_rows():
    result = {"scaling": [{"rows": 10, "seconds": 4.0}, {"rows": 20, "seconds": 8.0}]}
    assert suite.predict_over_training(result, {"rows": 20, "seconds": 12.0}) == 1.5
    assert suite.predict_over_training(result, {"rows": 30, "seconds": 12.0}) is None


def _saved(tmp_path, **extra) -> dict:
    saved = {"seconds_per_epoch": {"numpy": 1.0}, "compare_seconds": 5.0, "scaling": [{"rows": 1}], **extra}
    (tmp_path / "bench.json").write_text(json.dumps(saved))
    return saved


def test_merge_scale_replaces_the_scale_lists_and_keeps_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "figure", lambda result, path: None)
    saved = _saved(tmp_path)
    measured = {"synth": [{"rows": 2}], "scaling": [{"rows": 2}], "predict": [{"rows": 2}],
                "scale_machine": {"date": "today"}}
    suite.merge_scale(measured, tmp_path / "bench.json")
    merged = json.loads((tmp_path / "bench.json").read_text())
    assert merged == {**saved, **measured}


def test_a_run_without_scale_keeps_the_saved_runs_at_scale_and_the_service(tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "figure", lambda result, path: None)
    saved = {"seconds_per_epoch": {"numpy": 1.0}, "synth": [{"rows": 2}], "scaling": [{"rows": 2}],
             "predict": [{"rows": 2}], "scale_machine": {"date": "then"}, "serve": {"p99": 1}}
    (tmp_path / "bench.json").write_text(json.dumps(saved))
    suite.write({"seconds_per_epoch": {"numpy": 0.5}, "compare_seconds": 9.0}, tmp_path)
    merged = json.loads((tmp_path / "bench.json").read_text())
    assert merged == {**saved, "seconds_per_epoch": {"numpy": 0.5}, "compare_seconds": 9.0}


def test_merge_needs_scale():
    from conftest import run_main

    result = run_main("bench", "--merge", "bench.json")
    assert result.returncode == 2
    assert result.stderr.strip() == "noshow: error: --merge needs --scale (it measures only the runs at scale)"


def test_merge_into_a_file_that_is_not_a_bench_json_is_refused_before_measuring(tmp_path):
    from conftest import run_main

    (tmp_path / "other.json").write_text("{}")
    result = run_main("bench", "--scale", "1e3", "--merge", str(tmp_path / "other.json"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"noshow: error: {tmp_path / 'other.json'}: not a bench.json written by noshow bench"


def test_blas_floor_counts_the_twins_matrix_products():
    config = MLPConfig(hidden=(4, 3), batch_size=2)
    # forward 2*(5*4 + 4*3 + 3*1) = 70, weight gradients 70, input gradients of layers 2 and 3
    # 2*(4*3 + 3*1) = 30: 170 per row.
    assert suite.epoch_flop(10, 5, config) == 1700
    assert suite.blas_floor_seconds(10, 5, config, threads=1) > 0


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_elementwise_floor_times_an_epoch_with_a_last_partial_batch_and_two_hidden_layers(dropout):
    # 5 rows in batches of 2: the last batch has one row (a shape error would raise).
    config = MLPConfig(hidden=(4, 3), batch_size=2, dropout=dropout)
    assert suite.elementwise_floor_seconds(5, 6, config, epochs=1) > 0


def test_torchs_dropout_lanes_time_an_epoch_with_a_last_partial_batch_and_two_hidden_layers():
    # Run as a module in a fresh process; 5 rows in batches of 2, so the last batch has one row.
    assert suite.torch_dropout_lanes_seconds(5, MLPConfig(hidden=(4, 3), batch_size=2), threads=1, epochs=1) > 0


def test_bench_records_dropout_off_numpys_elementwise_floor_and_torchs_dropout_lanes(measured):
    assert set(measured["seconds_per_epoch_without_dropout"]) == {"numpy", "torch"}
    assert all(v > 0 for v in measured["seconds_per_epoch_without_dropout"].values())
    assert measured["numpy_elementwise_floor_seconds_per_epoch"] > 0
    assert measured["torch_dropout_lanes_seconds_per_epoch"] > 0
    assert set(measured["seconds_per_epoch"]) == {"numpy", "torch", "sklearn_mlp"}


def test_bench_json_has_the_documented_keys(measured, tmp_path):
    result = {**measured, "compare_seconds": 1.0, "scaling": [{"rows": 1000, "seconds": 1.0, "peak_rss_mb": 50.0}],
              "machine": {"cpus": 2}, "data": {}, "config": {},
              "ratios": {"numpy_over_torch": 1.0, "sklearn_over_numpy": 1.0, "sklearn_over_torch": 1.0}}
    paths = suite.write(result, tmp_path)
    saved = json.loads(paths[0].read_text())
    assert {"seconds_per_epoch", "blas_floor_seconds_per_epoch", "floor_ratio", "gflops", "peak_rss_mb",
            "import_rss_mb", "compare_seconds", "scaling", "machine", "numpy_elementwise_floor_seconds_per_epoch",
            "seconds_per_epoch_without_dropout", "torch_dropout_lanes_seconds_per_epoch"} <= set(saved)
    assert set(saved["floor_ratio"]) == {"numpy", "torch", "sklearn_mlp"}
    assert saved["floor_ratio"]["numpy"] == saved["seconds_per_epoch"]["numpy"] / saved["blas_floor_seconds_per_epoch"]
    assert paths[1].read_bytes()[:4] == b"\x89PNG"


def test_twin_workers_run_blas_on_the_threads_they_are_given(small_data, tmp_path):
    from noshow.evaluation.compare import run_twin
    from noshow.training.worker import save_parts

    prepared = prepare(small_data)
    save_parts(tmp_path, prepared.features, prepared.y, prepared.split)
    config = MLPConfig(hidden=(8,), epochs=1, members=1)
    result = run_twin("numpy", prepared.features.width, config, [0], 1, "cpu", False, tmp_path, validate=False)
    assert result["blas_threads"] == 1
