"""A model file as one ONNX graph: scaled features in, calibrated P(no-show) out (``noshow export``).

The graph holds everything of :meth:`noshow.model.TrainedModel.predict_proba` after the feature
pipeline: each ensemble member's layers (``Gemm`` with the weights as stored, (out, in), then the
activation), the mean of the members' logits, and the calibration map, computed in float64 as
:class:`noshow.stats.calibration.Calibrator` computes it. Its input ``features`` is the
(n, n_inputs) matrix of the model's :class:`~noshow.data.features.FeaturePipeline` (in the model's
dtype); its outputs are ``logit`` (n,) in that dtype and ``probability`` (n,) in float64.

What turns an appointment into those columns is not arithmetic a graph can hold (strings,
dates, a patient's earlier appointments), so the file's ``metadata_props`` describe it: the column
names in order, each numeric column's transform, mean and scale, each category's vocabulary (a
value outside it goes to the ``other`` column), the bins' edges, and the threshold on the
probability. Built with ``onnx.helper`` from the model file's arrays: no exporter traces a network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from noshow import __version__
from noshow.errors import NoshowError
from noshow.files import atomic_path
from noshow.nn.config import LEAKY_SLOPE, member_prefix
from noshow.stats.calibration import TAIL_SLOPE

OPSET = 17  # Gemm, Relu, Tanh, Sigmoid, Cast, MatMul: every runtime of the last years reads it
IR_VERSION = 8  # the IR version of opset 17
FORMAT = "noshow-onnx/1"
INPUT, LOGIT, PROBABILITY = "features", "logit", "probability"


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise NoshowError("export --onnx needs ONNX, an optional extra: pip install 'noshow[onnx]'") from None
    return onnx, helper, numpy_helper


class _Graph:
    """The nodes and constants of a graph under construction, each named once."""

    def __init__(self):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        output = output or self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attributes))
        return output


def _activation(g: _Graph, name: str, x: str, dtype: np.dtype) -> str:
    """The hidden layers' activation of :mod:`noshow.nn.numpy_mlp` as ONNX nodes."""
    if name == "relu":
        return g.node("Relu", [x])
    if name == "leaky_relu":  # max(x, 0) + slope·min(x, 0): LeakyRelu's alpha is a float32 attribute
        zero, slope = g.constant("zero", np.array(0, dtype)), g.constant("leaky_slope", np.array(LEAKY_SLOPE, dtype))
        return g.node("Add", [g.node("Max", [x, zero]), g.node("Mul", [g.node("Min", [x, zero]), slope])])
    if name == "tanh":
        return g.node("Tanh", [x])
    if name == "silu":  # x·σ(x)
        return g.node("Mul", [x, g.node("Sigmoid", [x])])
    raise NoshowError(f"export: activation {name!r} has no ONNX form here")


def _member_logit(g: _Graph, model, k: int, dtype: np.dtype) -> str:
    """Member ``k``'s logit, shape (n, 1): Gemm (weights (out, in), so transB) and activation per
    hidden layer, then the output layer."""
    prefix = member_prefix(k)
    h = INPUT
    for i in range(len(model.config.hidden)):
        weight = g.constant(f"m{k}_hidden{i}_weight", model.parameters[f"{prefix}hidden.{i}.weight"].astype(dtype))
        bias = g.constant(f"m{k}_hidden{i}_bias", model.parameters[f"{prefix}hidden.{i}.bias"].astype(dtype))
        h = _activation(g, model.config.activation, g.node("Gemm", [h, weight, bias], transB=1), dtype)
    weight = g.constant(f"m{k}_output_weight", model.parameters[f"{prefix}output.weight"].astype(dtype))
    bias = g.constant(f"m{k}_output_bias", model.parameters[f"{prefix}output.bias"].astype(dtype))
    return g.node("Gemm", [h, weight, bias], transB=1)


def _mean_logit(g: _Graph, model, dtype: np.dtype) -> str:
    """The members' mean logit, shape (n,): their sum over the count, as the ensemble averages."""
    logits = [_member_logit(g, model, k, dtype) for k in range(model.config.members)]
    total = logits[0] if len(logits) == 1 else g.node("Sum", logits)
    mean = total if len(logits) == 1 else g.node("Div", [total, g.constant("members", np.array(len(logits), dtype))])
    return g.node("Squeeze", [mean, g.constant("axis", np.array([1], np.int64))], output=LOGIT)


def _calibrated_log_odds(g: _Graph, calibrator, z: str) -> str:
    """The calibration map's log-odds of float64 logits ``z`` (n,), as
    :meth:`noshow.stats.calibration.Calibrator.log_odds` computes them.

    Isotonic knots (x_j, y_j) are a piecewise-linear function, written as y_0 plus one clipped
    ramp per segment, min(max(z - x_j, 0), x_{j+1} - x_j) · slope_j, summed by a MatMul, and the
    gentle tails beyond the end knots."""
    params = calibrator.params
    if calibrator.method == "identity":
        return z
    if calibrator.method == "platt":
        return g.node("Add", [g.node("Mul", [z, g.constant("platt_a", np.array(params["a"]))]),
                              g.constant("platt_b", np.array(params["b"]))])
    x = np.asarray(params["knots_logit"], dtype=np.float64)
    y = np.asarray(params["knots_log_odds"], dtype=np.float64)
    tail = g.constant("tail_slope", np.array(TAIL_SLOPE))
    zero = g.constant("zero", np.array(0.0))
    below = g.node("Mul", [g.node("Min", [g.node("Sub", [z, g.constant("first_knot", np.array(x[0]))]), zero]), tail])
    above = g.node("Mul", [g.node("Max", [g.node("Sub", [z, g.constant("last_knot", np.array(x[-1]))]), zero]), tail])
    out = g.node("Add", [g.node("Add", [below, above]), g.constant("first_log_odds", np.array(y[0]))])
    if len(x) > 1:
        column = g.node("Unsqueeze", [z, g.constant("axis", np.array([1], np.int64))])  # (n, 1)
        ramps = g.node("Max", [g.node("Min", [g.node("Sub", [column, g.constant("knots", x[:-1])]),
                                              g.constant("widths", np.diff(x))]), zero])  # (n, K - 1)
        rise = g.node("MatMul", [ramps, g.constant("slopes", np.diff(y) / np.diff(x))])  # (n,)
        out = g.node("Add", [out, rise])
    return out


def pipeline_metadata(model) -> dict[str, str]:
    """The ``metadata_props`` that describe the graph's input: how an appointment becomes its row."""
    pipeline = model.pipeline
    spec = pipeline.to_dict()
    columns = pipeline.feature_names
    description = (f"Input '{INPUT}': float matrix (n, {len(columns)}), columns in the order of noshow.feature_names. "
                   "Numeric columns: the raw value through its transform (log1p: log(1 + max(x, 0))), minus its "
                   "mean, over its scale. Binary columns: 0 or 1 as is. Each categorical feature: one column per "
                   "value of its vocabulary, in order, then its 'other' column for any value outside it, exactly "
                   "one of them 1. Each binned feature: one column per bin between its edges, exactly one 1. "
                   "A patient's history counts strictly earlier days only (noshow's features). "
                   f"Outputs: '{LOGIT}' (the networks' mean logit) and '{PROBABILITY}' (calibrated P(no-show), "
                   "float64); flag an appointment when the probability is at least noshow.threshold.")
    return {
        "noshow.format": FORMAT,
        "noshow.version": __version__,
        "noshow.description": description,
        "noshow.feature_names": json.dumps(columns),
        "noshow.numeric_transforms": json.dumps(spec["numeric"]),
        "noshow.means": json.dumps(spec["means"]),
        "noshow.scales": json.dumps(spec["stds"]),
        "noshow.binary": json.dumps(spec["binary"]),
        "noshow.vocabularies": json.dumps(spec["vocabularies"]),
        "noshow.bins": json.dumps(spec["binned"]),
        "noshow.feature_pipeline": json.dumps(spec, sort_keys=True),
        "noshow.calibration": json.dumps(model.calibrator.to_dict()),
        "noshow.threshold": repr(float(model.threshold)),
        "noshow.config": json.dumps(model.config.to_dict()),
        "noshow.weights_sha256": model.metadata.get("weights_sha256", ""),
    }


def onnx_model(model):
    """The ONNX ``ModelProto`` of a :class:`noshow.model.TrainedModel` (checked by ``onnx.checker``)."""
    g = _Graph()
    helper, onnx = g.helper, g.onnx
    dtype = np.dtype(model.config.np_dtype)
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    logit = _mean_logit(g, model, dtype)
    z = logit if dtype == np.float64 else g.node("Cast", [logit], to=onnx.TensorProto.DOUBLE)
    g.node("Sigmoid", [_calibrated_log_odds(g, model.calibrator, z)], output=PROBABILITY)
    graph = helper.make_graph(
        g.nodes, "noshow", [helper.make_tensor_value_info(INPUT, elem, ["n", model.n_inputs])],
        [helper.make_tensor_value_info(LOGIT, elem, ["n"]),
         helper.make_tensor_value_info(PROBABILITY, onnx.TensorProto.DOUBLE, ["n"])],
        g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="noshow",
                              producer_version=__version__,
                              doc_string="noshow: calibrated P(no-show) of an appointment from its scaled features")
    proto.ir_version = IR_VERSION
    helper.set_model_props(proto, pipeline_metadata(model))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path: str | Path) -> Path:
    """Write ``model`` as one ONNX file at ``path``, atomically (no partial file on failure)."""
    proto = onnx_model(model)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(proto.SerializeToString())
    return Path(path)
