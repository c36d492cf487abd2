"""Training a model for use: every member on the training rows with early stopping on validation;
there, too, the calibration map and the decision threshold (on calibrated probabilities); with a
refit, every member again on training + validation rows for its chosen epoch count; and the
model file's record of how it was made. In memory (:func:`train_model`) or from a file larger than
memory (:func:`train_streamed`); both, and data-parallel training, end the same way
(:func:`finish_model`)."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from noshow.clinic.drift import PROFILE_KEY, training_profile
from noshow.clinic.reasons import REFERENCE_KEY, reference_values
from noshow.data import schema as S
from noshow.data.features import KAGGLE, FeaturePipeline, FeatureSpec
from noshow.data.prepare import Prepared
from noshow.data.splits import Split
from noshow.errors import NoshowError
from noshow.model import TrainedModel
from noshow.nn.config import MLPConfig
from noshow.nn.twins import make_model, predict_all
from noshow.stats.calibration import Calibrator, expected_calibration_error, fit_calibrator
from noshow.stats.metrics import average_precision, steady_f1_threshold
from noshow.training.loop import EnsembleResult, fit_ensemble

MIN_ROWS = 50  # the fewest training or validation rows a streamed file may give


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
    return calibrator, steady_f1_threshold(y_val, p_val), record


def rows_record(split: Split, days: pl.Series, ids: pl.Series) -> dict:
    """Which rows trained the model: the split and its seed; each part's size, appointment days
    (first, last) and the SHA-256 of its ``AppointmentID``s in row order (:func:`ids_sha256`).
    ``days`` and ``ids`` (n_rows,) are the whole file's, in file order, as ``split`` indexes it."""
    record = {"split": split.kind, "split_seed": split.seed, "held_out_test": len(split.test) > 0, **split.sizes()}
    for name in ("train", "val", "test"):
        idx = getattr(split, name)
        if len(idx):
            part = days.gather(idx)
            record[f"{name}_days"] = [str(part.min()), str(part.max())]
            record[f"{name}_ids_sha256"] = ids_sha256(ids.gather(idx))
    return record


def ids_sha256(ids: pl.Series) -> str:
    """SHA-256 of appointment IDs (n,) in their order: integers as little-endian int64, other IDs
    as UTF-8 text one a line. Two models with equal digests learnt from the same rows."""
    if ids.dtype.is_integer():
        data = ids.cast(pl.Int64).to_numpy().astype("<i8").tobytes()
    else:
        data = "\n".join(ids.cast(pl.String).to_list()).encode()
    return hashlib.sha256(data).hexdigest()


def rows_used(prepared: Prepared) -> dict:
    """:func:`rows_record` of a prepared file."""
    frame = prepared.data.frame
    return rows_record(prepared.split, frame[S.APPOINTMENT_DATE], frame[S.APPOINTMENT_ID])


def train_model(prepared: Prepared, backend: str, config: MLPConfig, progress: bool = False,
                device: str = "cpu", calibration: str = "auto", refit: bool = False) -> tuple[TrainedModel, EnsembleResult]:
    """Train every member on the training part with early stopping on validation, then fit the
    calibration map and choose the max-F1 threshold of the averaged model there.

    ``refit``: then train every member afresh (same seed, initial weights and config) on the
    training and validation rows for the epoch count its early stopping chose (:func:`refit_members`);
    the model keeps the refit weights and the calibration map and threshold of the first model's
    validation logits (the refit has seen those rows, so they cannot calibrate it). The feature
    pipeline stays the one fitted on the training rows."""
    X_train, y_train = prepared.part("train")
    X_val, y_val = prepared.part("val")
    model = make_model(backend, prepared.features.width, config, device=device)
    result = fit_ensemble(model, X_train, y_train, config, X_val, y_val, progress=progress, label=backend)
    fitted = prepared.rows("train")
    if refit:
        fitted = prepared.rows("train", "val")
        result.refit = refit_members(backend, prepared.features.width, config, *prepared.part("train", "val"),
                                     result.best_epochs, progress, device)
    data = prepared.data
    data_record = {"source": data.source, "sha256": data.sha256, "synthetic": data.synthetic,
                   "rows": len(data), **rows_used(prepared)}
    if data.schema is not None:  # how the scored files are to be read (absent: the Kaggle layout)
        data_record["schema"] = data.schema.to_dict()
    rows = None
    if prepared.raw is not None:
        rows = FittedRows(prepared.raw[fitted], prepared.data.frame[S.APPOINTMENT_DATE][fitted], prepared.pipeline.spec)
    return finish_model(backend, config, result, prepared.pipeline, predict_all(model, X_val), y_val, data_record,
                        calibration, rows), result


def refit_members(backend: str, n_inputs: int, config: MLPConfig, X, y, epochs: list[int],
                  progress: bool = False, device: str = "cpu") -> EnsembleResult:
    """Fresh members of ``config`` (the seeds, hence the initial weights, of :func:`make_model`'s),
    member k trained on (X, y) for exactly ``epochs[k]`` epochs, without validation."""
    fresh = make_model(backend, n_inputs, config, device=device)
    return fit_ensemble(fresh, X, y, config, progress=progress, label=f"{backend} refit", epochs=epochs)


def train_streamed(path: str | Path, backend: str, config: MLPConfig, progress: bool = False,
                   device: str = "cpu", calibration: str = "auto", schema=None) -> tuple[TrainedModel, EnsembleResult]:
    """Train a model from a file larger than memory: features built out of core
    (:func:`noshow.data.stream.build_store`), every member trained from the chunk store one block
    at a time; returns what :func:`train_model` returns."""
    from noshow.data.loader import file_sha256
    from noshow.data.stream import build_store

    with tempfile.TemporaryDirectory(prefix="noshow-stream-") as tmp:
        pipeline, stores = build_store(path, Path(tmp), config.dtype, schema=schema)
        sizes = {f"n_{name}": len(store) for name, store in stores.items()}
        if min(sizes["n_train"], sizes["n_val"]) < MIN_ROWS:
            raise NoshowError(f"{path}: too few rows to train ({sizes})")
        model = make_model(backend, stores["train"].width, config, device=device)
        result = fit_ensemble(model, stores["train"], None, config, stores["val"], progress=progress,
                              label=f"{backend} (streamed)")
        data_record = {"source": str(path), "sha256": file_sha256(path), "synthetic": False,
                       "rows": sum(sizes.values()), "split": "hash", **sizes}
        if schema is not None:
            data_record["schema"] = schema.to_dict()
        val = stores["val"]
        return finish_model(backend, config, result, pipeline, predict_all(model, val), val.labels(), data_record,
                            calibration, FittedRows(first_block_training_rows(path, pipeline.spec, schema),
                                                    spec=pipeline.spec)), result


def first_block_training_rows(path: str | Path, spec=None, schema=None) -> pl.DataFrame:
    """Raw features of the training rows of a file's first block: a sample of a file larger than
    memory (medians and modes need no more rows than a block holds to settle); ``spec`` the
    model's features (default the Kaggle layout's), ``schema`` how the file is read."""
    from noshow.data.features import raw_features
    from noshow.data.stream import _part, typed_batches

    spec = KAGGLE if spec is None else spec
    batch = next(typed_batches(path, schema=schema))
    return raw_features(batch, spec=spec).filter(_part(batch, 0) == 0)


def streamed_reference(path: str | Path, spec=None, schema=None) -> dict:
    """The reasons' typical appointment of a file larger than memory (:func:`first_block_training_rows`)."""
    return reference_values(first_block_training_rows(path, spec, schema), KAGGLE if spec is None else spec)


@dataclass
class FittedRows:
    """The rows a model learnt from, as the model file summarises them: ``raw`` (n,) their raw
    features (all of them, or a sample: a streamed file's first block, a process's shard), whose
    typical appointment the reasons compare with; ``days`` (n,) their appointment dates, whose
    distribution with the features' is the drift profile (None: no profile); ``spec`` the features."""

    raw: pl.DataFrame
    days: pl.Series | None = None
    spec: FeatureSpec = KAGGLE


@dataclass(frozen=True)
class Scale:
    """How many processes trained the model, on which engine ("mpi", "torch.distributed"; None: one
    process, no engine)."""

    world_size: int = 1
    engine: str | None = None


def finish_model(backend: str, config: MLPConfig, result: EnsembleResult, pipeline: FeaturePipeline,
                 logits_val: np.ndarray, y_val: np.ndarray, data_record: dict, calibration: str = "auto",
                 rows: FittedRows | None = None, scale: Scale = Scale()) -> TrainedModel:
    """The model file of every way of training (in memory, streamed, data-parallel): calibration
    map and max-F1 threshold of the averaged model's validation logits (n_val,) with labels
    (n_val,), the record of how it was made (``data_record``: the data and rows, see
    :func:`rows_record`; ``scale``), and from ``rows`` the reasons' reference and drift profile."""
    calibrator, threshold, record = calibrate_and_threshold(logits_val, y_val, calibration)
    metadata = training_metadata(backend, data_record, result, record.pop("val_pr_auc"), config, scale)
    metadata["training"].update(record)
    if rows is not None:
        metadata[REFERENCE_KEY] = reference_values(rows.raw, rows.spec)
        if rows.days is not None:
            metadata[PROFILE_KEY] = training_profile(rows.raw, rows.days, rows.spec)
    final = result.refit or result
    return TrainedModel(config, final.parameters, pipeline, threshold, metadata, calibrator)


def training_metadata(backend: str, data_record: dict, result: EnsembleResult, val_pr_auc: float,
                      config: MLPConfig, scale: Scale = Scale()) -> dict:
    """The model file's record of what it was trained on and how training went. It holds no wall
    times, so that the same command and seed write a byte-identical model file. ``val_pr_auc``,
    the calibration and the threshold are the first model's (before a refit). ``global_batch``:
    rows of one optimiser step, over all processes (``--batch-size``, whatever the processes)."""
    training = {"members": len(result.members), "epochs_run": result.epochs_run,
                "best_epochs": result.best_epochs, "pos_weight": result.pos_weight,
                "val_pr_auc": float(val_pr_auc), "refit": result.refit is not None,
                "world_size": scale.world_size, "engine": scale.engine, "global_batch": config.batch_size}
    if result.refit is not None:
        training["refit_epochs"] = [r.epochs_run for r in result.refit.members]
        training["refit_rows"] = data_record.get("n_train", 0) + data_record.get("n_val", 0)
    return {"trained_with": backend, "data": data_record, "training": training}
