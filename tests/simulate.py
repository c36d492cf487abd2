"""A simulated month in a store: synthetic appointments with known risks, lists under a capacity
policy with a randomised holdout, calls, and outcomes drawn with a known call effect.

What the monitor's effect estimate is checked against (``tests/test_store_monitor.py``,
``bench/loop-simulation``): every list, call and outcome goes through the store's own functions, as a
clinic's would, and only the truth (each appointment's risk, the effect of a call) comes from here.
Kept beside the tests because nothing in the package uses it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import polars as pl

from noshow.clinic import scoring
from noshow.clinic.policies import Capacity, rank_in_day
from noshow.data import schema as S
from noshow.store import repository
from noshow.store.repository import Call, ModelFacts

FIRST_DAY = datetime.date(2016, 5, 2)
SIMULATED_MODEL = ModelFacts("0" * 64, "simulated.npz", {"name": "simulated.npz", "metrics": {"pr_auc": None},
                                                        "data": {"train_days": ["2016-04-01", "2016-04-30"]}})


@dataclass(frozen=True)
class Month:
    """How the month is simulated; ``call_effect`` is the share of no-shows that putting an
    appointment on the list prevents (over reached and unreached alike: a reached patient's
    no-show risk falls by ``call_effect / reach``)."""

    days: int = 28
    per_day: int = 600
    calls_per_day: int = 150
    holdout_share: float | None = 0.1
    call_effect: float = 0.3
    reach: float = 0.8
    seed: int = 0


def _day_scores(rng: np.random.Generator, day: datetime.date, month: Month, first_id: int) -> tuple[pl.DataFrame, np.ndarray]:
    """One day's scored appointments (the model's risks are the true ones) and their true risks."""
    risk = rng.beta(2.0, 6.0, month.per_day)
    ids = np.arange(first_id, first_id + month.per_day, dtype=np.int64)
    days = np.full(month.per_day, day.toordinal())
    flagged = Capacity(calls_per_day=month.calls_per_day).flags(risk, days, ids, 0.5)
    scores = pl.DataFrame({S.APPOINTMENT_ID: ids, S.PATIENT_ID: [f"P{i}" for i in ids],
                           S.APPOINTMENT_DAY: [day] * month.per_day, scoring.PROBABILITY: np.round(risk, 6),
                           scoring.RANK: rank_in_day(risk, days, ids), scoring.FLAGGED: flagged,
                           scoring.REASONS: [""] * month.per_day})
    return scores, risk


def simulate_month(engine, month: Month = Month()) -> dict:
    """Fill ``engine``'s store with the month; the truth (appointments, calls made) as counts."""
    rng = np.random.default_rng(month.seed)
    counts = {"appointments": 0, "called": 0, "reached": 0}
    for d in range(month.days):
        day = FIRST_DAY + datetime.timedelta(days=d)
        scores, risk = _day_scores(rng, day, month, 1_000_000 + d * month.per_day)
        issued = repository.issue_lists(engine, scores, SIMULATED_MODEL, "capacity", f"{month.calls_per_day} calls per day",
                                        "simulation", f"{month.seed:064d}", month.holdout_share,
                                        month.seed if month.holdout_share else None).scores
        to_call = issued[scoring.FLAGGED].to_numpy().astype(bool)
        reached = to_call & (rng.random(month.per_day) < month.reach)
        # The call lowers a reached patient's risk so that the list as a whole prevents call_effect of no-shows.
        risk_after = np.where(reached, risk * (1 - month.call_effect / month.reach), risk)
        missed = rng.random(month.per_day) < risk_after
        ids = issued[S.APPOINTMENT_ID].to_numpy()
        repository.record_calls(engine, [Call(int(a), day, "reached" if r else "no_answer")
                                         for a, r in zip(ids[to_call], reached[to_call])], "simulated caller")
        repository.record_outcomes(engine, ids, missed, "simulation")
        counts["appointments"] += month.per_day
        counts["called"] += int(to_call.sum())
        counts["reached"] += int(reached.sum())
    return counts
