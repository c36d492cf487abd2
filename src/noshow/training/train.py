"""Training a model for use: every member on the training rows with early stopping on validation,
the decision threshold chosen there, and the model file's record of how it was made. In memory
(:func:`train_model`) or from a file larger than memory (:func:`train_streamed`); both end the
same way (:func:`_finish`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from noshow.data.encoded import ChunkStore
from noshow.data.features import FeaturePipeline
from noshow.data.prepare import Prepared
from noshow.errors import NoshowError
from noshow.evaluation.metrics import average_precision, best_f1_threshold, sigmoid64
from noshow.model import TrainedModel
from noshow.nn.config import MLPConfig
from noshow.training.loop import Ensemble, EnsembleResult, fit_ensemble, make_model, predict_all

MIN_ROWS = 50  # the fewest training or validation rows a streamed file may give


def train_model(prepared: Prepared, backend: str, config: MLPConfig, progress: bool = False,
                device: str = "cpu") -> tuple[TrainedModel, EnsembleResult]:
    """Train every member on the training part with early stopping on validation, then choose the
    max-F1 threshold of the averaged model there."""
    X_train, y_train = prepared.part("train")
    X_val, y_val = prepared.part("val")
    model = make_model(backend, prepared.features.width, config, device=device)
    result = fit_ensemble(model, X_train, y_train, config, X_val, y_val, progress=progress, label=backend)
    data = prepared.data
    data_record = {"source": data.source, "sha256": data.sha256, "synthetic": data.synthetic,
                   "rows": len(data), "split": prepared.split.kind, **prepared.split.sizes()}
    return _finish(model, result, prepared.pipeline, X_val, y_val, data_record), result


def train_streamed(path: str | Path, backend: str, config: MLPConfig, progress: bool = False,
                   device: str = "cpu") -> tuple[TrainedModel, EnsembleResult]:
    """Train a model from a file larger than memory: features built out of core
    (:func:`noshow.data.stream.build_store`), every member trained from the chunk store one block
    at a time; returns what :func:`train_model` returns."""
    from noshow.data.loader import file_sha256
    from noshow.data.stream import build_store

    with tempfile.TemporaryDirectory(prefix="noshow-stream-") as tmp:
        pipeline, stores = build_store(path, Path(tmp), config.dtype)
        sizes = {f"n_{name}": len(store) for name, store in stores.items()}
        if min(sizes["n_train"], sizes["n_val"]) < MIN_ROWS:
            raise NoshowError(f"{path}: too few rows to train ({sizes})")
        model = make_model(backend, stores["train"].width, config, device=device)
        result = fit_ensemble(model, stores["train"], None, config, stores["val"], progress=progress,
                              label=f"{backend} (streamed)")
        data_record = {"source": str(path), "sha256": file_sha256(path), "synthetic": False,
                       "rows": sum(sizes.values()), "split": "hash", **sizes}
        return _finish(model, result, pipeline, stores["val"], None, data_record), result


def _finish(model: Ensemble, result: EnsembleResult, pipeline: FeaturePipeline, X_val, y_val,
            data_record: dict) -> TrainedModel:
    """The trained model: the max-F1 threshold of the averaged model on the validation rows (an
    :class:`~noshow.data.encoded.Encoded` with labels ``y_val``, or a chunk store holding them)."""
    if isinstance(X_val, ChunkStore):
        y_val = X_val.labels()
    p_val = sigmoid64(predict_all(model, X_val))
    threshold = best_f1_threshold(y_val, p_val)
    metadata = training_metadata(model.name, data_record, result, average_precision(y_val, p_val))
    return TrainedModel(model.config, result.parameters, pipeline, threshold, metadata)


def training_metadata(backend: str, data_record: dict, result: EnsembleResult, val_pr_auc: float) -> dict:
    """The model file's record of what it was trained on and how training went."""
    return {
        "trained_with": backend,
        "data": data_record,
        "training": {"members": len(result.members), "epochs_run": result.epochs_run,
                     "best_epochs": result.best_epochs, "train_seconds": result.train_seconds,
                     "pos_weight": result.pos_weight, "val_pr_auc": float(val_pr_auc)},
    }
