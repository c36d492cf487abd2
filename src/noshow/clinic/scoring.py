"""Scoring appointments for a clinic: the one function the command line and the service call.

:func:`score` turns a model and a file of appointments into the call list's table: calibrated
risk, rank within the day, the policy's flag and the reasons, one row per appointment in the
file's order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from noshow.clinic.policies import Cost, MaxF1, Policy, rank_in_day
from noshow.clinic.reasons import reason_sizes, reason_strings
from noshow.data import schema as S
from noshow.data.features import raw_features

if TYPE_CHECKING:
    from noshow.data.loader import Appointments
    from noshow.model import TrainedModel

PROBABILITY = "no_show_probability"
RANK = "rank_in_day"
FLAGGED = "flagged"
REASONS = "reasons"
SCORE_COLUMNS = (S.APPOINTMENT_ID, S.PATIENT_ID, S.APPOINTMENT_DAY, PROBABILITY, RANK, FLAGGED, REASONS)
PROBABILITY_DECIMALS = 6


def score(model: "TrainedModel", data: "Appointments", history: "Appointments | None" = None,
          policy: Policy | None = None, backend: str = "numpy", device: str = "cpu",
          past: pl.DataFrame | None = None) -> pl.DataFrame:
    """Score every appointment of ``data``.

    Parameters
    ----------
    model : a trained model (either twin's file; ``backend`` chooses who computes).
    data : the appointments to score; outcomes not needed.
    history : the same patients' other appointments (earlier ones with outcomes, later ones
        booked), for their history features; without it only ``data``'s own rows count. Rows of
        ``history`` with an AppointmentID in ``data`` are ignored (``data``'s own rows count once).
    policy : from :mod:`noshow.clinic.policies`; None = the model's max-F1 threshold.
    past : the history features of ``data``'s rows, computed beforehand (scoring a file larger than
        memory computes them over the whole file, then scores whole days at a time); then
        ``history`` is not used.

    Returns
    -------
    Frame of len(data) rows in ``data``'s order with :data:`SCORE_COLUMNS`: ``AppointmentDay`` as
    a date, ``no_show_probability`` calibrated (float64, rounded to 6 decimals; ranks and flags use
    the unrounded values), ``rank_in_day`` (1 = highest risk of its day), ``flagged`` (0/1, int8),
    ``reasons`` (``text (+0.80)`` joined by ``; ``, strongest first).
    """
    policy = policy or MaxF1()
    frame = data.frame
    if past is not None:
        raw = raw_features(frame, past=past, spec=model.pipeline.spec)
    else:  # counts shared rows once
        raw = raw_features(frame, None if history is None else history.frame, spec=model.pipeline.spec)
    encoded = model.pipeline.encode(raw, model.config.np_dtype)
    probability = model.calibrator(model.predict_logits(encoded, backend, device))
    _, sizes = reason_sizes(model, raw, backend, device, encoded)
    day = frame[S.APPOINTMENT_DATE].to_physical().to_numpy()
    ids = frame[S.APPOINTMENT_ID].to_numpy()
    flagged = policy.flags(probability, day, ids, model.threshold)
    return pl.DataFrame({
        S.APPOINTMENT_ID: frame[S.APPOINTMENT_ID],
        S.PATIENT_ID: frame[S.PATIENT_ID],
        S.APPOINTMENT_DAY: frame[S.APPOINTMENT_DATE],
        PROBABILITY: np.round(probability, PROBABILITY_DECIMALS),
        RANK: rank_in_day(probability, day, ids),
        FLAGGED: flagged,
        REASONS: reason_strings(raw, sizes, model.pipeline.spec),
    })


def summary(scores: pl.DataFrame, policy: Policy | None, threshold: float) -> dict:
    """What a person reads after scoring: rows, days, flagged, the policy, and for the cost policy
    the list's expected net benefit (from the rounded probabilities of ``scores``)."""
    policy = policy or MaxF1()
    out = {"rows": scores.height, "days": scores[S.APPOINTMENT_DAY].n_unique(),
           "flagged": int(scores[FLAGGED].sum()), "policy": policy.name, "rule": policy.describe(threshold)}
    if isinstance(policy, Cost):
        out["expected_net_benefit"] = policy.net_benefit(scores[PROBABILITY].to_numpy(), scores[FLAGGED].to_numpy())
    return out
