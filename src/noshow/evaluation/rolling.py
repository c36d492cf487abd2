"""Rolling-origin evaluation: performance over time, not at one cut.

For each of the last :data:`ORIGIN_DAYS` appointment days, a model is trained on the days before it
(the latest tenth of those days held out, as ``noshow train --split time`` holds them out, for
early stopping and the calibration map) and scores that day alone, as a clinic retraining each
evening would score the next morning. Each day gets PR AUC, ROC AUC, calibration-in-the-large
(:func:`noshow.stats.metrics.calibration_fit`) and the precision of its call list (the
:data:`~noshow.evaluation.decisions.CALL_LIST_SHARE` highest risks of the day, the list the fairness
audit examines).

Training afresh at every origin would cost ten trainings per twin (8 s each for one network on the
real file, one thread). So each twin's model here is one network (the run's settings otherwise), and
the first origin's network is trained from its initial weights with early stopping,
and each later origin's network starts from the one before and trains :data:`UPDATE_EPOCHS` more
epochs over all of its own training rows, at :data:`UPDATE_LR_SHARE` of the learning rate: an
update, as a clinic would run each evening. Nothing an origin uses has seen its scored day: the
starting weights were trained on strictly earlier days, and the calibration map is fitted afresh on
the origin's held-out days. The feature pipeline (means, scales, vocabularies) is the first
origin's, fitted on its training rows, so the networks' inputs keep their meaning from one origin
to the next. An appointment's features read only strictly earlier days (its history) and the
bookings already made, so they are computed once for the whole file.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.metrics import roc_auc_score

from noshow.clinic.policies import Capacity
from noshow.data import schema as S
from noshow.data.features import FeaturePipeline, raw_features, spec_of
from noshow.data.loader import Appointments
from noshow.data.splits import VAL_FRACTION
from noshow.evaluation.decisions import CALL_LIST_SHARE
from noshow.nn.config import MLPConfig
from noshow.stats.metrics import average_precision, calibration_fit

ORIGIN_DAYS = 10
UPDATE_EPOCHS = 1  # epochs each later origin's network trains on from the one before
UPDATE_LR_SHARE = 0.1  # of the configured learning rate, constant, for those epochs
ROLLING_KEYS = ("day", "rows", "no_show_rate", "pr_auc", "roc_auc", "calibration_in_the_large",
                "call_list_precision", "train_rows")


def origin_days(day: np.ndarray, origins: int = ORIGIN_DAYS) -> np.ndarray:
    """The last ``origins`` distinct days of ``day`` (all but the first day, if there are fewer)."""
    distinct = np.unique(day)
    return distinct[max(1, len(distinct) - origins):]


def origin_parts(day: np.ndarray, origin) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (train, validation, scored) of one origin: the validation rows are the latest
    tenth of the distinct days before ``origin`` (at least one day), as ``noshow train --split time``
    holds out; the scored rows are the origin's own day."""
    earlier = np.flatnonzero(day < origin)
    distinct = np.unique(day[earlier])
    n_val = max(1, int(round(VAL_FRACTION * len(distinct))))
    is_val = np.isin(day[earlier], distinct[-n_val:]) if len(distinct) > 1 else np.zeros(len(earlier), bool)
    return earlier[~is_val], earlier[is_val], np.flatnonzero(day == origin)


def score_day(y: np.ndarray, p: np.ndarray, appointment_id: np.ndarray) -> dict:
    """One day's scores of calibrated probabilities ``p`` (n,) for labels ``y`` (n,)."""
    single = y.min() == y.max()
    calls = Capacity(call_share=CALL_LIST_SHARE).flags(p, np.zeros(len(p)), appointment_id, 0.5).astype(bool)
    return {"rows": int(len(y)), "no_show_rate": float(y.mean()),
            "pr_auc": None if single else average_precision(y, p),
            "roc_auc": None if single else float(roc_auc_score(y, p)),
            "calibration_in_the_large": None if single else calibration_fit(y, p)["intercept"],
            "call_list_precision": float(y[calls].mean()) if calls.any() else None}


def rolling_origin(data: Appointments, backend: str, config: MLPConfig, origins: int = ORIGIN_DAYS,
                   raw=None) -> list[dict]:
    """One row of :data:`ROLLING_KEYS` per origin day (oldest first) for the ``backend`` twin trained
    with ``config`` (``raw``: :func:`noshow.data.features.raw_features` of ``data``, when already
    computed)."""
    from noshow.nn.twins import make_model, predict_all
    from noshow.training.loop import fit_ensemble
    from noshow.training.train import calibrate_and_threshold

    frame = data.frame
    spec = spec_of(frame, data.schema)
    raw = raw_features(frame, spec=spec) if raw is None else raw
    day = frame[S.APPOINTMENT_DATE].to_physical().to_numpy()
    y = frame[S.TARGET].to_numpy().astype(np.int64)
    ids = frame[S.APPOINTMENT_ID].to_numpy()
    update = replace(config, lr=config.lr * UPDATE_LR_SHARE, schedule="constant", patience=0)
    rows, pipeline, parameters = [], None, None
    for origin in origin_days(day, origins):
        train, val, scored = origin_parts(day, origin)
        if len(val) == 0 or min(len(np.unique(y[train])), len(np.unique(y[val]))) < 2:
            continue  # too early in the file to train a model
        pipeline = pipeline or FeaturePipeline(spec=spec).fit(raw[train])
        X_train, X_val, X_day = (pipeline.encode(raw[idx], dtype=config.np_dtype) for idx in (train, val, scored))
        if parameters is None:
            model = make_model(backend, X_train.width, config)
            fit_ensemble(model, X_train, y[train], config, X_val, y[val])
        else:
            model = make_model(backend, X_train.width, update, parameters)
            fit_ensemble(model, X_train, y[train], update, epochs=[UPDATE_EPOCHS] * config.members)
        parameters = model.get_parameters()
        calibrator, _, _ = calibrate_and_threshold(predict_all(model, X_val), y[val])
        p = calibrator(predict_all(model, X_day))
        date = frame[S.APPOINTMENT_DATE][int(scored[0])]
        rows.append({"day": str(date), **score_day(y[scored], p, ids[scored]), "train_rows": int(len(train))})
    return rows


def rolling_both(data: Appointments, config: MLPConfig, twins: tuple[str, ...], threads: int = 1,
                 origins: int = ORIGIN_DAYS) -> dict[str, list[dict]]:
    """:func:`rolling_origin` of each twin, one network each (``config.members`` set to 1), the twins
    in two threads of this process with ``threads`` BLAS threads each: both libraries release
    Python's lock in their array work, so the two run side by side (on the real file, 4 origins:
    16 s together, 12 s and 18 s one after the other)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    single = replace(config, members=1)
    raw = raw_features(data.frame, spec=spec_of(data.frame, data.schema))
    torch_threads = None
    if "torch" in twins:
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads), ThreadPoolExecutor(len(twins)) as pool:
            futures = {twin: pool.submit(rolling_origin, data, twin, single, origins, raw) for twin in twins}
            return {twin: future.result() for twin, future in futures.items()}
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
