"""Scoring appointments for a clinic: the one function the command line and the service call.

:func:`score` turns a model and a file of appointments into the call list's table: calibrated
risk, rank within the day, the policy's flag and the reasons, one row per appointment in the
file's order.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from noshow.clinic.policies import Cost, MaxF1, Policy, rank_in_day
from noshow.clinic.reasons import REASONS, reason_sizes, reason_strings
from noshow.data import schema as S
from noshow.data.features import raw_features

if TYPE_CHECKING:
    from noshow.data.loader import Appointments
    from noshow.model import TrainedModel

PROBABILITY = "no_show_probability"
RANK = "rank_in_day"
FLAGGED = "flagged"
SCORE_COLUMNS = (S.APPOINTMENT_ID, S.PATIENT_ID, S.APPOINTMENT_DAY, PROBABILITY, RANK, FLAGGED, REASONS)
PROBABILITY_DECIMALS = 6
# Which rows get reasons (``noshow predict --reasons``): every row, the flagged ones (the others'
# reasons cell is empty), or none (every cell empty). Reasons cost most of scoring's time.
REASON_ROWS = ("all", "flagged", "none")


@contextmanager
def timed(stages: dict | None, name: str):
    """Add the seconds the block takes to ``stages[name]`` (nothing when ``stages`` is None): where
    the time of a scoring run goes, as the benchmark at scale records it."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if stages is not None:
            stages[name] = stages.get(name, 0.0) + time.perf_counter() - started


def score(model: "TrainedModel", data: "Appointments", history: "Appointments | None" = None,
          policy: Policy | None = None, backend: str = "numpy", device: str = "cpu",
          past: pl.DataFrame | None = None, reasons: str = "all", stages: dict | None = None) -> pl.DataFrame:
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
    reasons : which rows get reasons, one of :data:`REASON_ROWS`; the others' cell is empty.
    stages : if given, seconds added under ``features``, ``scores`` (the networks' logits, the
        calibration, policy and ranks), ``reason passes`` and ``reason words`` (:func:`timed`).

    Returns
    -------
    Frame of len(data) rows in ``data``'s order with :data:`SCORE_COLUMNS`: ``AppointmentDay`` as
    a date, ``no_show_probability`` calibrated (float64, rounded to 6 decimals; ranks and flags use
    the unrounded values), ``rank_in_day`` (1 = highest risk of its day), ``flagged`` (0/1, int8),
    ``reasons`` (``text (+0.80)`` joined by ``; ``, strongest first, or
    :data:`~noshow.clinic.reasons.NO_RAISE` when no group raises the risk; empty for a row
    ``reasons`` leaves out).
    """
    if reasons not in REASON_ROWS:
        raise ValueError(f"reasons={reasons!r}: choose one of {', '.join(REASON_ROWS)}")
    policy = policy or MaxF1()
    frame = data.frame
    with timed(stages, "features"):
        if past is not None:
            raw = raw_features(frame, past=past, spec=model.pipeline.spec)
        else:  # counts shared rows once
            raw = raw_features(frame, None if history is None else history.frame, spec=model.pipeline.spec)
        encoded = model.pipeline.encode(raw, model.config.np_dtype)
    with timed(stages, "scores"):
        probability, flagged, ranks = decide(model, encoded, frame[S.APPOINTMENT_DATE].to_physical().to_numpy(),
                                             frame[S.APPOINTMENT_ID].to_numpy(), policy, backend, device)
    explained = np.arange(len(frame)) if reasons == "all" else np.flatnonzero(flagged if reasons == "flagged" else [])
    return pl.DataFrame({
        S.APPOINTMENT_ID: frame[S.APPOINTMENT_ID],
        S.PATIENT_ID: frame[S.PATIENT_ID],
        S.APPOINTMENT_DAY: frame[S.APPOINTMENT_DATE],
        PROBABILITY: np.round(probability, PROBABILITY_DECIMALS),
        RANK: ranks,
        FLAGGED: flagged,
        REASONS: _reasons(model, raw, encoded, explained, backend, device, stages),
    })


def decide(model: "TrainedModel", encoded, day: np.ndarray, ids: np.ndarray, policy: Policy,
           backend: str = "numpy", device: str = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated risk (n,) float64, the policy's flag (n,) int8 and the rank within the day (n,)
    of encoded rows whose appointment days (``day``, any integer code of the date) and IDs are
    given: what every scoring path decides once it has the features."""
    probability = model.calibrator(model.predict_logits(encoded, backend, device))
    return probability, policy.flags(probability, day, ids, model.threshold), rank_in_day(probability, day, ids)


def _reasons(model: "TrainedModel", raw: pl.DataFrame, encoded, rows: np.ndarray, backend: str,
             device: str, stages: dict | None = None) -> pl.Series:
    """The reasons column of ``raw``'s rows: those of ``rows`` (indices) given, the others empty."""
    n = raw.height
    if len(rows) < n:
        raw, encoded = raw[rows], encoded.subset(rows)
    with timed(stages, "reason passes"):
        _, sizes = reason_sizes(model, raw, backend, device, encoded)
    with timed(stages, "reason words"):
        texts = reason_strings(raw, sizes, model.pipeline.spec)
        if len(rows) == n:
            return texts
        return pl.Series(REASONS, [""] * n, dtype=pl.String).scatter(rows, texts)


def summary(scores: pl.DataFrame, policy: Policy | None, threshold: float) -> dict:
    """What a person reads after scoring: rows, days, flagged, the policy, and for the cost policy
    the list's expected net benefit (from the rounded probabilities of ``scores``)."""
    policy = policy or MaxF1()
    out = {"rows": scores.height, "days": scores[S.APPOINTMENT_DAY].n_unique(),
           "flagged": int(scores[FLAGGED].sum()), "policy": policy.name, "rule": policy.describe(threshold)}
    if isinstance(policy, Cost):
        out["expected_net_benefit"] = policy.net_benefit(scores[PROBABILITY].to_numpy(), scores[FLAGGED].to_numpy())
    return out
