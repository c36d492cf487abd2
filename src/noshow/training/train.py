"""Training a model for use: every member on the training rows with early stopping on validation,
the decision threshold chosen there, and the model file's record of how it was made."""

from __future__ import annotations

from noshow.data.prepare import Prepared
from noshow.evaluation.metrics import average_precision, best_f1_threshold, sigmoid64
from noshow.model import TrainedModel
from noshow.nn.config import MLPConfig
from noshow.training.loop import EnsembleResult, fit_ensemble, make_model


def train_model(prepared: Prepared, backend: str, config: MLPConfig, progress: bool = False,
                device: str = "cpu") -> tuple[TrainedModel, EnsembleResult]:
    """Train every member on the training part with early stopping on validation, then choose the
    max-F1 threshold of the averaged model there."""
    X_train, y_train = prepared.part("train")
    X_val, y_val = prepared.part("val")
    model = make_model(backend, prepared.features.width, config, device=device)
    result = fit_ensemble(model, X_train, y_train, config, X_val, y_val, progress=progress, label=backend)
    p_val = sigmoid64(model.predict_logits(X_val))
    threshold = best_f1_threshold(y_val, p_val)
    data = prepared.data
    data_record = {"source": data.source, "sha256": data.sha256, "synthetic": data.synthetic,
                   "rows": len(data), "split": prepared.split.kind, **prepared.split.sizes()}
    metadata = training_metadata(backend, data_record, result, average_precision(y_val, p_val))
    return TrainedModel(config, result.parameters, prepared.pipeline, threshold, metadata), result


def training_metadata(backend: str, data_record: dict, result: EnsembleResult, val_pr_auc: float) -> dict:
    """The model file's record of what it was trained on and how training went."""
    return {
        "trained_with": backend,
        "data": data_record,
        "training": {"members": len(result.members), "epochs_run": result.epochs_run,
                     "best_epochs": result.best_epochs, "train_seconds": result.train_seconds,
                     "pos_weight": result.pos_weight, "val_pr_auc": float(val_pr_auc)},
    }
