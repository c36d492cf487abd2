"""How good are the decisions a clinic makes with the model, on held-out rows.

- **Call lists**: the per-day capacity policy (:class:`noshow.clinic.policies.Capacity`, the same
  code that flags rows in ``predict``) at a share of each day's appointments; its precision (share
  of the called who would have missed), recall (share of all no-shows called) and lift (precision
  over the base rate).
- **Decision curve** (Vickers & Elkin 2006): the net benefit of calling everyone whose risk is at
  least the threshold probability p_t, NB = TP/n - FP/n · p_t / (1 - p_t), in true positives per
  appointment, against calling everyone and calling no one (NB = 0).
- **The rule without a model**: what a clinic can do with its own records: call the patients with
  at least two earlier no-shows or booked more than 14 days ahead. The network must beat it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from noshow.clinic.policies import Capacity

CALL_SHARES = (0.05, 0.10, 0.20)
# The call list the fairness audit and the rolling origin examine: 10% of each day, highest risk first.
CALL_LIST_SHARE = 0.10
CURVE_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.02, 0.61, 0.02))
RULE_NAME = "no_show_rule"
RULE_PRIOR_NO_SHOWS = 2
RULE_LEAD_DAYS = 14


def rule_flags(raw: pl.DataFrame) -> np.ndarray:
    """The rule without a model, (n,) in {0, 1}: two or more earlier no-shows, or booked more than
    14 days ahead (``raw`` from :func:`noshow.data.features.raw_features`)."""
    flagged = (raw["prior_no_shows"] >= RULE_PRIOR_NO_SHOWS) | (raw["lead_days"] > RULE_LEAD_DAYS)
    return flagged.cast(pl.Int8).to_numpy().astype(np.float64)


def list_metrics(y: np.ndarray, flagged: np.ndarray, share: float | None = None) -> dict:
    """Precision, recall and lift of one call list (``flagged`` boolean, (n,))."""
    flagged = np.asarray(flagged, bool)
    calls, hits = int(flagged.sum()), int(y[flagged].sum())
    precision = hits / calls if calls else 0.0
    base = float(y.mean()) if len(y) else 0.0
    out = {"calls": calls, "precision": precision, "recall": hits / max(int(y.sum()), 1),
           "lift": precision / base if base else 0.0}
    return {"share": share, **out} if share is not None else out


def call_lists(y: np.ndarray, probability: np.ndarray, day: np.ndarray, appointment_id: np.ndarray,
               shares=CALL_SHARES) -> list[dict]:
    """The per-day call list at each share of the day's appointments, highest risks first."""
    return [list_metrics(y, Capacity(call_share=s).flags(probability, day, appointment_id, 0.5).astype(bool), s)
            for s in shares]


def decision_curve(y: np.ndarray, probability: np.ndarray, thresholds=CURVE_THRESHOLDS) -> dict:
    """Net benefit (true positives per appointment) of acting on ``probability`` >= each threshold,
    and of treating everyone; treating no one is 0 everywhere."""
    y = np.asarray(y)
    n, positives = len(y), float(y.sum())
    net, treat_all = [], []
    for t in thresholds:
        act = probability >= t
        tp, fp = float(y[act].sum()), float(act.sum() - y[act].sum())
        odds = t / (1 - t)
        net.append(tp / n - fp / n * odds)
        treat_all.append(positives / n - (n - positives) / n * odds)
    return {"threshold": list(thresholds), "net_benefit": net, "treat_all": treat_all}
