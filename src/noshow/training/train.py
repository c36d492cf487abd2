"""Training a model for use: every member on the training rows with early stopping on validation;
there, too, the calibration map and the decision threshold (on calibrated probabilities); and the
model file's record of how it was made."""

from __future__ import annotations

import numpy as np

from noshow.clinic.calibration import Calibrator, expected_calibration_error, fit_calibrator
from noshow.clinic.reasons import REFERENCE_KEY, reference_values
from noshow.clinic.drift import PROFILE_KEY, training_profile
from noshow.data import schema as S
from noshow.data.prepare import Prepared
from noshow.evaluation.metrics import average_precision, best_f1_threshold
from noshow.model import TrainedModel
from noshow.nn.config import MLPConfig
from noshow.training.loop import EnsembleResult, fit_ensemble, make_model


def calibrate_and_threshold(logits_val: np.ndarray, y_val: np.ndarray,
                            method: str = "auto") -> tuple[Calibrator, float, dict]:
    """Fit the calibration map on validation logits, choose the max-F1 threshold on the calibrated
    validation probabilities (the map is monotone, so the same rows are flagged as before), and
    return them with the validation record (PR AUC, ECE before and after, the method)."""
    calibrator = fit_calibrator(logits_val, y_val, method)
    p_val = calibrator(logits_val)
    raw = Calibrator("identity")(logits_val)
    record = {"val_pr_auc": average_precision(y_val, p_val), "calibration": calibrator.method,
              "val_ece": expected_calibration_error(y_val, p_val),
              "val_ece_uncalibrated": expected_calibration_error(y_val, raw)}
    return calibrator, best_f1_threshold(y_val, p_val), record


def rows_used(prepared: Prepared) -> dict:
    """Which rows trained the model: the split, the part sizes and each part's appointment days."""
    days = prepared.data.frame[S.APPOINTMENT_DATE]
    record = {"split": prepared.split.kind, "held_out_test": len(prepared.split.test) > 0,
              **prepared.split.sizes()}
    for name in ("train", "val", "test"):
        idx = getattr(prepared.split, name)
        if len(idx):
            part = days.gather(idx)
            record[f"{name}_days"] = [str(part.min()), str(part.max())]
    return record


def train_model(prepared: Prepared, backend: str, config: MLPConfig, progress: bool = False,
                device: str = "cpu", calibration: str = "auto") -> tuple[TrainedModel, EnsembleResult]:
    """Train every member on the training part with early stopping on validation, then fit the
    calibration map and choose the max-F1 threshold of the averaged model there."""
    X_train, y_train = prepared.part("train")
    X_val, y_val = prepared.part("val")
    model = make_model(backend, prepared.features.width, config, device=device)
    result = fit_ensemble(model, X_train, y_train, config, X_val, y_val, progress=progress, label=backend)
    calibrator, threshold, record = calibrate_and_threshold(model.predict_logits(X_val), y_val, calibration)
    data = prepared.data
    data_record = {"source": data.source, "sha256": data.sha256, "synthetic": data.synthetic,
                   "rows": len(data), **rows_used(prepared)}
    metadata = training_metadata(backend, data_record, result, record.pop("val_pr_auc"))
    metadata["training"].update(record)
    if prepared.raw is not None:
        metadata[REFERENCE_KEY] = reference_values(prepared.raw[prepared.split.train])
        metadata[PROFILE_KEY] = training_profile(prepared.raw[prepared.split.train],
                                                 prepared.data.frame[S.APPOINTMENT_DATE][prepared.split.train])
    trained = TrainedModel(config, result.parameters, prepared.pipeline, threshold, metadata, calibrator)
    return trained, result


def training_metadata(backend: str, data_record: dict, result: EnsembleResult, val_pr_auc: float) -> dict:
    """The model file's record of what it was trained on and how training went. It holds no wall
    times, so that the same command and seed write a byte-identical model file."""
    return {
        "trained_with": backend,
        "data": data_record,
        "training": {"members": len(result.members), "epochs_run": result.epochs_run,
                     "best_epochs": result.best_epochs,
                     "pos_weight": result.pos_weight, "val_pr_auc": float(val_pr_auc)},
    }
