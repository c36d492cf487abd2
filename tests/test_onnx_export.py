"""noshow export --onnx: the model file as one ONNX graph, scored by ONNX Runtime as both twins
score the model file (|Δp| <= 1e-6), with the feature pipeline in its metadata."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import assert_user_error, run_main
from noshow.data import loader
from noshow.data.features import FeaturePipeline, raw_features
from noshow.data.splits import make_split
from noshow.model import TrainedModel
from noshow.nn.config import MLPConfig
from noshow.onnx_export import export_onnx
from noshow.stats.calibration import Calibrator
from noshow.training import BACKENDS as TWINS
from noshow.training import make_model

ort = pytest.importorskip("onnxruntime")
TOLERANCE = 1e-6
SMALL = ("--epochs", "3", "--hidden", "16,8", "--members", "3", "--quiet")


def _scores(path, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logit, probability) of ONNX Runtime for the scaled feature rows X."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logit, probability = session.run(["logit", "probability"], {"features": X})
    return logit, probability


def _features(model: TrainedModel, data: loader.Appointments) -> np.ndarray:
    raw = raw_features(data.frame, spec=model.pipeline.spec)
    return model.pipeline.encode(raw, model.config.np_dtype).to_array(model.config.np_dtype)


def _assert_parity(model_path, data, tmp_path, rows=None) -> float:
    """Export the model file, score ``rows`` of ``data`` through ONNX Runtime and through both twins;
    return the largest |Δp|."""
    model = TrainedModel.load(model_path)
    onnx_path = tmp_path / (model_path.stem + ".onnx")
    result = run_main("export", "--model", str(model_path), "--onnx", str(onnx_path), "--quiet")
    assert result.returncode == 0, result.stderr
    rows = np.arange(len(data)) if rows is None else rows
    _, p_onnx = _scores(onnx_path, _features(model, data)[rows])
    worst = 0.0
    for backend in TWINS:
        p_twin = model.predict_proba(data, backend)[rows]
        worst = max(worst, float(np.max(np.abs(p_onnx - p_twin))))
    assert worst <= TOLERANCE
    return worst


@pytest.fixture(scope="module")
def small_models(small_csv, tmp_path_factory):
    """A model file of each twin trained on the small synthetic file (three networks averaged)."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for backend in TWINS:
        paths[backend] = folder / f"{backend}.npz"
        result = run_main("train", "--data", str(small_csv), "--backend", backend, "--out", str(paths[backend]), *SMALL)
        assert result.returncode == 0, result.stderr
    return paths


@pytest.mark.parametrize("twin", TWINS)
def test_onnx_scores_equal_both_twins_on_the_model_file_of_each_twin(small_models, small_data, tmp_path, twin):
    _assert_parity(small_models[twin], small_data, tmp_path)


@pytest.mark.realdata
@pytest.mark.parametrize("twin", TWINS)
def test_onnx_scores_equal_both_twins_on_the_real_files_test_rows(real_data_path, real_data, tmp_path, twin):
    model_path = tmp_path / f"{twin}.npz"
    result = run_main("train", "--data", str(real_data_path), "--split", "time", "--backend", twin,
                      "--out", str(model_path), "--epochs", "2", "--hidden", "64,32", "--members", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    test_rows = make_split(real_data.frame, "time").test
    assert len(test_rows) > 20_000
    _assert_parity(model_path, real_data, tmp_path, test_rows)


def _model(small_data, calibrator: Calibrator, **config) -> TrainedModel:
    """A model of random initial weights (no training) with the given calibration map and settings."""
    config = MLPConfig(hidden=(12, 6), members=2, **config)
    pipeline = FeaturePipeline().fit(raw_features(small_data.frame))
    parameters = make_model("numpy", len(pipeline.feature_names), config).get_parameters()
    return TrainedModel(config, parameters, pipeline, threshold=0.3, calibrator=calibrator)


ISOTONIC = Calibrator("isotonic", {"knots_logit": [-0.4, -0.1, 0.0, 0.05, 0.3],
                                   "knots_log_odds": [-2.5, -1.9, -1.2, -1.0, 0.4]})
MAPS = {"isotonic": ISOTONIC, "isotonic, one knot": Calibrator("isotonic", {"knots_logit": [0.0], "knots_log_odds": [-1.0]}),
        "platt": Calibrator("platt", {"a": 0.7, "b": -1.1}), "identity": Calibrator("identity")}


@pytest.mark.parametrize("name", MAPS)
def test_every_calibration_map_is_the_same_function_in_the_graph(small_data, tmp_path, name):
    model = _model(small_data, MAPS[name])
    export_onnx(model, tmp_path / "m.onnx")
    X = _features(model, small_data)
    logit, p = _scores(tmp_path / "m.onnx", X)
    z = model.predict_logits(X)
    assert np.max(np.abs(logit - z)) <= 1e-6
    assert np.max(np.abs(p - model.calibrator(logit))) <= 1e-12  # the map itself, on the same logits
    if name.startswith("isotonic"):  # rows on both tails and between the knots
        assert z.min() < MAPS[name].params["knots_logit"][0] and z.max() > MAPS[name].params["knots_logit"][-1]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "silu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_activation_and_dtype_gives_the_twins_probabilities(small_data, tmp_path, activation, dtype):
    model = _model(small_data, ISOTONIC, activation=activation, dtype=dtype)
    export_onnx(model, tmp_path / "m.onnx")
    _, p = _scores(tmp_path / "m.onnx", _features(model, small_data))
    for backend in TWINS:
        difference = np.max(np.abs(p - model.predict_proba(small_data, backend)))
        assert difference <= (TOLERANCE if dtype == "float32" else 1e-12)


def test_the_files_metadata_describes_the_feature_pipeline(small_models, tmp_path):
    import onnx

    model = TrainedModel.load(small_models["numpy"])
    proto = onnx.load(str(export_onnx(model, tmp_path / "m.onnx")))
    props = {p.key: p.value for p in proto.metadata_props}
    names = json.loads(props["noshow.feature_names"])
    assert names == model.pipeline.feature_names and len(names) == model.n_inputs
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == model.n_inputs
    assert json.loads(props["noshow.means"]) == model.pipeline.means
    assert json.loads(props["noshow.scales"]) == model.pipeline.stds
    assert json.loads(props["noshow.vocabularies"]) == model.pipeline.vocabularies
    assert FeaturePipeline.from_dict(json.loads(props["noshow.feature_pipeline"])) == model.pipeline
    assert Calibrator.from_dict(json.loads(props["noshow.calibration"])) == model.calibrator
    assert float(props["noshow.threshold"]) == model.threshold


def test_export_without_the_onnx_extra_says_how_to_install_it(small_models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # what Python does when the package is absent
    target = tmp_path / "m.onnx"
    assert_user_error(run_main("export", "--model", str(small_models["numpy"]), "--onnx", str(target)),
                      "pip install 'noshow[onnx]'")
    assert not target.exists()


def test_export_of_a_missing_model_file_is_a_user_error(tmp_path):
    target = tmp_path / "m.onnx"
    assert_user_error(run_main("export", "--model", str(tmp_path / "none.npz"), "--onnx", str(target)), "none.npz")
    assert not target.exists()
