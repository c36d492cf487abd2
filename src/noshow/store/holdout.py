"""The randomised holdout: a stated share of each day's flagged appointments, set aside, not called.

What lets :mod:`noshow.store.effect` measure what a call does: on each day, among the appointments
the policy flagged, ``round(share x n_flagged)`` are drawn at random and not called; the others
are. The two groups differ only by chance, so their no-show rates compare fairly. The draw for a
day depends only on the seed, the day and the flagged appointments' IDs (not their order), so a
list issued again for the same day holds out the same appointments.
"""

from __future__ import annotations

import datetime

import numpy as np

from noshow.errors import NoshowError


def check_share(share: float | None, seed: int | None) -> None:
    """A share must be in [0, 1) and come with a seed (so that the draw is recorded and repeatable)."""
    if share is None:
        if seed is not None:
            raise NoshowError("--holdout-seed: give --holdout-share too (the share of flagged appointments set aside)")
        return
    if not 0 <= share < 1:
        raise NoshowError(f"--holdout-share: {share} is outside [0, 1); give the share of each day's flagged "
                          f"appointments to set aside, e.g. 0.1")
    if seed is None:
        raise NoshowError("--holdout-share: give --holdout-seed N too, so that the draw is recorded and repeatable")


def draw(flagged_ids: np.ndarray, day: datetime.date, share: float, seed: int) -> np.ndarray:
    """Which of a day's flagged appointments are held out.

    Parameters
    ----------
    flagged_ids : (k,) int64 AppointmentIDs flagged on ``day``.
    day, share, seed : the day, the share set aside (0 <= share < 1) and the recorded seed.

    Returns
    -------
    (k,) bool, True for the ``round(share * k)`` held out (half rounds up), in ``flagged_ids``'s order.
    """
    flagged_ids = np.asarray(flagged_ids, dtype=np.int64)
    k = len(flagged_ids)
    n_out = int(np.floor(share * k + 0.5))
    rng = np.random.default_rng([seed, day.toordinal()])
    order = np.argsort(flagged_ids, kind="stable")  # the draw must not depend on the file's row order
    chosen = np.zeros(k, bool)
    chosen[order[rng.permutation(k)[:n_out]]] = True
    return chosen
