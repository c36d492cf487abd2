"""The call's effect on the no-show rate, measured from the store.

**Randomised** (a holdout was drawn, :mod:`noshow.store.holdout`): among the flagged appointments
with an outcome, those assigned to be called against those held out. The comparison is by
assignment (intention to treat): a call that did not reach the patient counts as a call made, as
it does in the cost of the list, so that E is the share of no-shows that putting an appointment on
the list prevents, the E of the cost policy (p x E x V > C, one call's cost per listed appointment).

- absolute: d = p_called - p_held_out, with Newcombe's hybrid score interval (Wilson intervals of
  each rate combined; good at small counts, Newcombe 1998, method 10);
- relative: E = 1 - p_called / p_held_out, with the interval of the log risk ratio
  (se = sqrt(1/x1 - 1/n1 + 1/x0 - 1/n0), Katz 1978), 0.5 added to every cell when one is empty.

**Observational** (no holdout): appointments ranked just above the capacity cut-off (called)
against those just below (not called). They differ in risk, so the comparison is of observed
minus predicted no-shows on each side; it is labelled as observational and is not an estimate a
policy should rest on (the model's calibration error near the cut-off is part of it).
"""

from __future__ import annotations

import math

import polars as pl

from noshow.errors import NoshowError

Z95 = 1.959963984540054
MIN_HELD_OUT = 30  # held-out appointments with an outcome below which no effect is estimated
CUTOFF_WINDOW = 5  # ranks on each side of a day's cut-off in the observational comparison
RANDOMISED = "randomised holdout, intention to treat (assigned to be called vs held out)"
OBSERVATIONAL = ("observational, NOT randomised: appointments ranked just above vs just below the day's cut-off; "
                 "they differ in risk and the difference compares observed minus predicted no-shows, so "
                 "calibration error near the cut-off is part of it; do not rest a policy on it")


def wilson(events: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion events / n ((nan, nan) when n = 0)."""
    if n == 0:
        return (math.nan, math.nan)
    p = events / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: int, n1: int, x0: int, n0: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p0."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    return (d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2))


def relative_effect(x1: int, n1: int, x0: int, n0: int, z: float = Z95) -> tuple[float, tuple[float, float]]:
    """E = 1 - (x1/n1) / (x0/n0) and its interval from the log risk ratio."""
    if 0 in (x1, x0) or x1 == n1 or x0 == n0:  # an empty cell: 0.5 added to every cell
        x1, n1, x0, n0 = x1 + 0.5, n1 + 1, x0 + 0.5, n0 + 1
    log_ratio = math.log((x1 / n1) / (x0 / n0))
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    return 1 - math.exp(log_ratio), (1 - math.exp(log_ratio + z * se), 1 - math.exp(log_ratio - z * se))


def holdout_effect(listed: pl.DataFrame) -> dict | None:
    """The randomised estimate from :func:`noshow.store.repository.listed_appointments`'s frame:
    flagged, callable rows with an outcome, on lists that drew a holdout. None without a holdout
    or with fewer than :data:`MIN_HELD_OUT` held-out outcomes."""
    rows = listed.filter(pl.col("holdout_share").is_not_null() & pl.col("flagged") & ~pl.col("do_not_call")
                         & pl.col("missed").is_not_null())
    control = rows.filter(pl.col("held_out"))
    called = rows.filter(~pl.col("held_out"))
    if control.height < MIN_HELD_OUT or called.height == 0:
        return None
    x1, n1 = int(called["missed"].sum()), called.height
    x0, n0 = int(control["missed"].sum()), control.height
    if x0 == 0:
        return None
    e, e_ci = relative_effect(x1, n1, x0, n0)
    reached = int(called["reached"].sum())
    return {"method": RANDOMISED, "called": {"n": n1, "missed": x1, "rate": x1 / n1, "ci": wilson(x1, n1)},
            "held_out": {"n": n0, "missed": x0, "rate": x0 / n0, "ci": wilson(x0, n0)},
            "absolute": x1 / n1 - x0 / n0, "absolute_ci": newcombe(x1, n1, x0, n0),
            "E": e, "E_ci": e_ci, "reached_share": reached / n1,
            "note": "E is the share of no-shows prevented by putting an appointment on the list (reached or not)"}


def cutoff_comparison(listed: pl.DataFrame, window: int = CUTOFF_WINDOW) -> dict | None:
    """The observational comparison around each day's cut-off (lists without a holdout); None
    when no day has rows with outcomes on both sides."""
    cut = (listed.filter(pl.col("flagged") & ~pl.col("held_out")).group_by("day").agg(pl.col("rank").max().alias("cut")))
    near = (listed.filter(pl.col("missed").is_not_null()).join(cut, on="day")
            .filter((pl.col("rank") > pl.col("cut") - window) & (pl.col("rank") <= pl.col("cut") + window)))
    above = near.filter(pl.col("rank") <= pl.col("cut"))
    below = near.filter(pl.col("rank") > pl.col("cut"))
    if above.height == 0 or below.height == 0:
        return None

    def side(frame: pl.DataFrame) -> dict:
        x, n = int(frame["missed"].sum()), frame.height
        return {"n": n, "missed": x, "rate": x / n, "ci": wilson(x, n), "predicted": float(frame["probability"].mean())}

    a, b = side(above), side(below)
    # Observed minus predicted on each side: what the calls changed beyond the risk difference.
    gap = (a["rate"] - a["predicted"]) - (b["rate"] - b["predicted"])
    se = math.sqrt(a["rate"] * (1 - a["rate"]) / a["n"] + b["rate"] * (1 - b["rate"]) / b["n"])
    return {"method": OBSERVATIONAL, "window_ranks": window, "above_cutoff": a, "below_cutoff": b,
            "absolute_vs_predicted": gap, "absolute_vs_predicted_ci": (gap - Z95 * se, gap + Z95 * se),
            "E_vs_predicted": -gap / a["predicted"] if a["predicted"] > 0 else None}


def stored_estimate(engine) -> dict:
    """The randomised estimate from the store (``predict --call-effect measured``); a
    :class:`NoshowError` when the store holds none yet."""
    from noshow.store.repository import listed_appointments

    estimate = holdout_effect(listed_appointments(engine))
    if estimate is None:
        raise NoshowError(f"--call-effect measured: the store has no randomised estimate yet (it needs lists issued with "
                          f"--holdout-share and at least {MIN_HELD_OUT} held-out appointments with outcomes); "
                          f"give --call-effect E instead")
    return estimate
