"""Realised performance: what the issued lists did, measured from the outcomes that came back.

From :func:`noshow.store.repository.listed_appointments` (each day's latest list, with calls and
outcomes), :func:`monitor` computes, for the appointments whose outcome is known:

- per day and per ISO week: the list's realised precision (missed among the flagged) and recall
  (flagged among the missed), the observed and the predicted no-show rate;
- discrimination (PR AUC, ROC AUC) and calibration in practice (predicted against observed in
  bins of risk, Wilson 95% intervals; expected calibration error), on **all** appointments and on
  those **nobody acted on**: the not-flagged and the randomised holdout, weighted by the inverse of
  their chance to be left alone (1 for the not-flagged, 1 / share for the held out), so that they
  stand for every appointment as it would have gone uncalled. A call changes the outcome it
  predicts: the figures on all appointments mix the model's error with the calls' effect;
- the no-show rates of flagged-and-reached, flagged-not-reached, held-out and not-flagged;
- the call's effect (:mod:`noshow.store.effect`): randomised when a holdout was drawn, else the
  observational comparison around the cut-off, labelled as such;
- the slots freed by calls (rescheduled or cancelled), which a clinic can offer again, and how
  many of them were booked again (:func:`refilled_slots`);
- drift of each day's listed appointments against the model's training data (PSI by feature
  group, :mod:`noshow.clinic.drift`, recorded when the list was issued by ``predict --db``);
- warnings, each with its threshold (:data:`THRESHOLDS`), and whether retraining is due.
"""

from __future__ import annotations

import datetime
import math

import numpy as np
import polars as pl

from noshow.store import effect
from noshow.store.effect import wilson

CALIBRATION_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
# When monitor warns: each threshold is stated in the report beside the warning.
THRESHOLDS = {
    "min_outcomes": 200,  # unacted-on outcomes below which no discrimination or calibration warning is given
    "pr_auc_drop": 0.05,  # realised PR AUC (unacted on) this far below the model's validation PR AUC
    "calibration_gap": 0.05,  # |observed - predicted| no-show rate (unacted on), beyond its 95% interval
    "ece": 0.05,  # expected calibration error (unacted on, 8 bins)
    "retrain_days": 90,  # days from the end of the model's training data to the latest list
}


def _rate(frame: pl.DataFrame) -> dict:
    x, n = int(frame["missed"].sum()), frame.height
    return {"n": n, "missed": x, "rate": x / n if n else None, "ci": wilson(x, n) if n else None}


def _precision_recall(frame: pl.DataFrame) -> dict:
    """Realised precision and recall of the list (flagged = the policy's flag) where outcomes are known."""
    known = frame.filter(pl.col("missed").is_not_null())
    flagged = known.filter(pl.col("flagged"))
    missed = known.filter(pl.col("missed"))
    tp = int((flagged["missed"]).sum())
    return {"appointments": frame.height, "with_outcome": known.height, "flagged": int(frame["flagged"].sum()),
            "held_out": int(frame["held_out"].sum()), "called": int((frame["attempts"] > 0).sum()),
            "reached": int(frame["reached"].sum()), "missed": missed.height,
            "precision": tp / flagged.height if flagged.height else None,
            "recall": tp / missed.height if missed.height else None,
            "observed_rate": missed.height / known.height if known.height else None,
            "predicted_rate": float(known["probability"].mean()) if known.height else None}


def _periods(listed: pl.DataFrame, key: pl.Expr, name: str) -> list[dict]:
    out = []
    for (period,), rows in listed.with_columns(key.alias(name)).group_by(name, maintain_order=True):
        out.append({name: str(period), **_precision_recall(rows)})
    return out


def unacted_weights(listed: pl.DataFrame) -> pl.DataFrame:
    """The appointments nobody acted on (not flagged, or held out), with ``weight``: the inverse
    of their chance to be left alone (1, or 1 / the holdout share)."""
    return (listed.filter(~pl.col("flagged") | pl.col("held_out"))
            .filter(pl.col("attempts") == 0)
            .with_columns(pl.when(pl.col("held_out")).then(1 / pl.col("holdout_share")).otherwise(1.0).alias("weight")))


def discrimination(frame: pl.DataFrame, weight: np.ndarray | None = None) -> dict:
    """PR AUC and ROC AUC (scikit-learn, weighted when ``weight`` is given) of the known outcomes."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = frame["missed"].to_numpy().astype(int)
    p = frame["probability"].to_numpy()
    if len(np.unique(y)) < 2:
        return {"n": len(y), "pr_auc": None, "roc_auc": None}
    return {"n": len(y), "pr_auc": float(average_precision_score(y, p, sample_weight=weight)),
            "roc_auc": float(roc_auc_score(y, p, sample_weight=weight))}


def calibration(frame: pl.DataFrame, weight: np.ndarray | None = None, edges=CALIBRATION_BINS) -> dict:
    """Predicted against observed no-show rates in bins of predicted risk, with Wilson intervals
    (on the effective sample size when weighted), the calibration in the large and the ECE."""
    y = frame["missed"].to_numpy().astype(float)
    p = frame["probability"].to_numpy()
    w = np.ones_like(p) if weight is None else np.asarray(weight, dtype=float)
    bins = []
    which = np.clip(np.digitize(p, edges[1:-1]), 0, len(edges) - 2)
    ece = 0.0
    for b in range(len(edges) - 1):
        rows = which == b
        if not rows.any():
            continue
        wb = w[rows]
        observed = float(np.sum(wb * y[rows]) / wb.sum())
        predicted = float(np.sum(wb * p[rows]) / wb.sum())
        n_eff = wb.sum() ** 2 / np.sum(wb ** 2)  # Kish's effective sample size
        low, high = wilson(observed * n_eff, n_eff)
        bins.append({"low": edges[b], "high": edges[b + 1], "n": int(rows.sum()), "predicted": predicted,
                     "observed": observed, "ci": (low, high)})
        ece += wb.sum() / w.sum() * abs(observed - predicted)
    total_w = w.sum()
    observed = float(np.sum(w * y) / total_w) if len(y) else None
    predicted = float(np.sum(w * p) / total_w) if len(y) else None
    n_eff = total_w ** 2 / np.sum(w ** 2) if len(y) else 0
    return {"n": len(y), "bins": bins, "observed": observed, "predicted": predicted,
            "observed_ci": wilson(observed * n_eff, n_eff) if len(y) else None, "ece": float(ece) if len(y) else None}


def groups(listed: pl.DataFrame) -> dict:
    """No-show rates of flagged-reached, flagged-not-reached (to call, not reached), held out, not flagged."""
    known = listed.filter(pl.col("missed").is_not_null())
    to_call = known.filter(pl.col("flagged") & ~pl.col("held_out") & ~pl.col("do_not_call"))
    return {"flagged_reached": _rate(to_call.filter(pl.col("reached"))),
            "flagged_not_reached": _rate(to_call.filter(~pl.col("reached"))),
            "held_out": _rate(known.filter(pl.col("held_out"))),
            "not_flagged": _rate(known.filter(~pl.col("flagged")))}


def _warnings(card: dict | None, unacted_disc: dict, unacted_cal: dict,
              latest_day: datetime.date | None) -> tuple[list[str], bool]:
    t = THRESHOLDS
    warnings = []
    if unacted_cal["n"] < t["min_outcomes"]:
        warnings.append(f"only {unacted_cal['n']} outcomes of appointments nobody acted on: discrimination and "
                        f"calibration are not judged below {t['min_outcomes']}")
        stale = False
    else:
        val = (card or {}).get("metrics", {}).get("pr_auc")
        if val is not None and unacted_disc["pr_auc"] is not None and unacted_disc["pr_auc"] < val - t["pr_auc_drop"]:
            warnings.append(f"realised PR AUC {unacted_disc['pr_auc']:.3f} (unacted on) is more than {t['pr_auc_drop']} "
                            f"below the model's validation PR AUC {val:.3f}")
        low, high = unacted_cal["observed_ci"]
        predicted = unacted_cal["predicted"]
        if abs(unacted_cal["observed"] - predicted) > t["calibration_gap"] and not low <= predicted <= high:
            warnings.append(f"observed no-show rate {unacted_cal['observed']:.3f} (unacted on, 95% CI {low:.3f}-{high:.3f}) "
                            f"is more than {t['calibration_gap']} from the predicted {predicted:.3f}")
        if unacted_cal["ece"] > t["ece"]:
            warnings.append(f"expected calibration error {unacted_cal['ece']:.3f} (unacted on) is over {t['ece']}")
        stale = bool(warnings)
    trained = (card or {}).get("data", {}).get("train_days")
    if trained and latest_day is not None:
        age = (latest_day - datetime.date.fromisoformat(trained[-1])).days
        if age > t["retrain_days"]:
            warnings.append(f"the model's training data end {age} days before the latest list (over {t['retrain_days']})")
            stale = True
    return warnings, stale


def refilled_slots(freed: list[tuple], booked: list[tuple]) -> int:
    """How many freed slots were booked again: within each day, in time order, a booking made after
    a call freed a slot (and not yet matched to an earlier booking) fills it. ``freed`` and
    ``booked`` are (day, when) pairs. Counted by number, not by slot: an export does not say which
    slot a booking took, so a booking for that day after the freeing counts as its refill."""
    events = sorted([(day, when, 0) for day, when in freed] + [(day, when, 1) for day, when in booked])
    refilled, open_slots, current = 0, 0, None
    for day, _, is_booking in events:  # a freeing sorts before a booking at the same instant
        if day != current:
            current, open_slots = day, 0
        if not is_booking:
            open_slots += 1
        elif open_slots:
            open_slots, refilled = open_slots - 1, refilled + 1
    return refilled


def _freed(engine) -> dict:
    """The freed-slots KPI: counts by result, how many were booked again, and the share."""
    from noshow.store import repository

    counts = repository.freed_slots(engine)
    freed, booked = repository.slot_events(engine)
    refilled = refilled_slots(freed, booked)
    return {**counts, "freed": len(freed), "refilled": refilled,
            "refill_rate": refilled / len(freed) if freed else None, "bookings_recorded": len(booked)}


def monitor(engine) -> dict:
    """The monitor's numbers (``monitor.json``) for the store ``engine``."""
    from noshow.store import repository

    listed = repository.listed_appointments(engine)
    known = listed.filter(pl.col("missed").is_not_null())
    unacted = unacted_weights(known)
    weight = unacted["weight"].to_numpy()
    models = sorted(set(listed["model_id"].to_list()))
    card = repository.model_card(engine, models[-1]) if models else None
    latest = listed["day"].max() if listed.height else None
    unacted_disc, unacted_cal = discrimination(unacted, weight), calibration(unacted, weight)
    warnings, retrain = _warnings(card, unacted_disc, unacted_cal, latest)
    randomised = effect.holdout_effect(listed)
    freed = _freed(engine)
    drift = repository.list_drift(engine)
    if drift and drift[-1]["warnings"]:  # the latest list's drift against the training data
        warnings += [f"drift on {drift[-1]['day']}: {w}" for w in drift[-1]["warnings"]]
        retrain = True
    return {
        "summary": {**_precision_recall(listed), "days": listed["day"].n_unique(),
                    "first_day": str(listed["day"].min()) if listed.height else None, "last_day": str(latest) if latest else None,
                    "models": [card["name"]] if card else []},
        "per_day": _periods(listed, pl.col("day"), "day"),
        "per_week": _periods(listed, pl.col("day").dt.truncate("1w"), "week"),
        "discrimination": {"all": discrimination(known), "unacted": unacted_disc,
                           "model_validation_pr_auc": (card or {}).get("metrics", {}).get("pr_auc")},
        "calibration": {"all": calibration(known), "unacted": unacted_cal},
        "groups": groups(listed),
        "effect": {"randomised": randomised,
                   "observational": None if randomised else effect.cutoff_comparison(listed)},
        "freed_slots": freed,
        "drift": drift,
        "warnings": warnings, "retrain_due": retrain, "thresholds": THRESHOLDS,
        "notes": ["flagged = the policy's flag; held out = flagged but set aside at random and not called",
                  "unacted on = not flagged or held out, and never called; weighted by 1 / its chance to be "
                  "left alone, so that it stands for every appointment as it would have gone uncalled",
                  "freed slots: calls that ended rescheduled or cancelled; refilled: matched, in time order within the day, "
                  "to a booking for that day made after the call (from later exports, noshow outcomes)"],
    }


def finite(value):
    """``value`` with NaN and infinities as None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
