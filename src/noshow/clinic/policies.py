"""Flagging policies: which scored appointments go on the call list.

- :class:`MaxF1`: flag p >= the model's threshold (maximum F1 on calibrated validation
  probabilities). The default.
- :class:`Capacity`: flag the K highest calibrated risks of each appointment day
  (``--calls-per-day K``: exactly min(K, n) of a day's n appointments), or a share S of them
  (``--call-share S``: ceil(S * n), so a day with any appointment gets at least one call and S = 1
  calls everyone). Within a day appointments are ranked by risk, highest first; equal risks are
  ranked by AppointmentID, smallest first, so the list never depends on the file's row order.
- :class:`Cost`: flag where the expected saving of a call exceeds its cost, p * E * V > C, with
  V = value of a slot that would otherwise be lost (``--slot-value``), C = cost of a call
  (``--call-cost``), E = share of no-shows a call prevents (``--call-effect``). The expected net
  benefit of the list is the sum over flagged appointments of (p * E * V - C), in the units of V
  and C; it is only as good as the calibration of p.

Every parameter is applied as given; a bad value is a :class:`NoshowError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from noshow.errors import NoshowError

POLICY_FLAGS = ("calls_per_day", "call_share", "slot_value", "call_cost", "call_effect")
COST_FLAGS = ("slot_value", "call_cost", "call_effect")


def rank_in_day(probability: np.ndarray, day: np.ndarray, appointment_id: np.ndarray) -> np.ndarray:
    """Rank (n,) int64 of each appointment within its day: 1 = highest probability; equal
    probabilities ranked by ascending ``appointment_id``.

    Parameters
    ----------
    probability : (n,) calibrated P(no-show); day : (n,) appointment days (any sortable dtype);
    appointment_id : (n,) integers, unique.
    """
    order = np.lexsort((appointment_id, -np.asarray(probability, dtype=np.float64), day))
    sorted_day = np.asarray(day)[order]
    starts = np.r_[True, sorted_day[1:] != sorted_day[:-1]]
    position = np.arange(len(order))
    first = np.maximum.accumulate(np.where(starts, position, 0))
    ranks = np.empty(len(order), np.int64)
    ranks[order] = position - first + 1
    return ranks


def day_sizes(day: np.ndarray) -> np.ndarray:
    """(n,) number of appointments on each row's day."""
    _, inverse, counts = np.unique(day, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()]


@dataclass(frozen=True)
class MaxF1:
    """Flag p >= the model's max-F1 threshold."""

    name = "max-f1"

    def flags(self, probability, day, appointment_id, threshold: float) -> np.ndarray:
        return (np.asarray(probability) >= threshold).astype(np.int8)

    def describe(self, threshold: float) -> str:
        return f"max-F1 threshold {threshold:.4f}"


@dataclass(frozen=True)
class Capacity:
    """Flag the ``calls_per_day`` (or the ceil of ``call_share`` x n) highest risks of each day."""

    calls_per_day: int | None = None
    call_share: float | None = None
    name = "capacity"

    def __post_init__(self):
        if (self.calls_per_day is None) == (self.call_share is None):
            raise NoshowError("a capacity policy takes exactly one of --calls-per-day and --call-share")
        if self.calls_per_day is not None and (isinstance(self.calls_per_day, bool) or self.calls_per_day < 0):
            raise NoshowError(f"--calls-per-day: {self.calls_per_day} is negative; "
                              f"give the calls staff can make each day (0 or more)")
        if self.call_share is not None and not 0 < self.call_share <= 1:
            raise NoshowError(f"--call-share: {self.call_share} is outside (0, 1]; "
                              f"give the share of each day's appointments to call")

    def calls(self, n_day: np.ndarray) -> np.ndarray:
        """Calls on a day of ``n_day`` appointments (elementwise)."""
        if self.calls_per_day is not None:
            return np.minimum(self.calls_per_day, n_day)
        return np.ceil(self.call_share * n_day - 1e-9).astype(np.int64)  # 0.1 * 30 is 3, not 4

    def flags(self, probability, day, appointment_id, threshold: float) -> np.ndarray:
        ranks = rank_in_day(probability, day, appointment_id)
        return (ranks <= self.calls(day_sizes(day))).astype(np.int8)

    def describe(self, threshold: float) -> str:
        if self.calls_per_day is not None:
            return f"{self.calls_per_day} calls per day"
        return f"{self.call_share:g} of each day's appointments (rounded up)"


@dataclass(frozen=True)
class Cost:
    """Flag where p * call_effect * slot_value > call_cost."""

    slot_value: float
    call_cost: float
    call_effect: float
    name = "cost"

    def __post_init__(self):
        for flag in COST_FLAGS:
            value = getattr(self, flag)
            if not math.isfinite(value) or value < 0:
                raise NoshowError(f"--{flag.replace('_', '-')}: {value} must be a finite number, 0 or more")
        if self.call_effect > 1:
            raise NoshowError(f"--call-effect: {self.call_effect} is outside [0, 1]; give the share of no-shows a call prevents")

    def gain(self, probability: np.ndarray) -> np.ndarray:
        """Expected net benefit (n,) of calling each appointment: p * E * V - C."""
        return np.asarray(probability, dtype=np.float64) * self.call_effect * self.slot_value - self.call_cost

    def flags(self, probability, day, appointment_id, threshold: float) -> np.ndarray:
        return (self.gain(probability) > 0).astype(np.int8)

    def net_benefit(self, probability: np.ndarray, flagged: np.ndarray) -> float:
        """Expected net benefit of the list: sum of p * E * V - C over flagged appointments."""
        return float(np.sum(self.gain(probability)[np.asarray(flagged, dtype=bool)]))

    def describe(self, threshold: float) -> str:
        return (f"cost: call where p x {self.call_effect:g} x {self.slot_value:g} > {self.call_cost:g} "
                f"(p > {self.call_cost / max(self.call_effect * self.slot_value, 1e-300):.4f})")


Policy = MaxF1 | Capacity | Cost


def make_policy(calls_per_day: int | None = None, call_share: float | None = None, slot_value: float | None = None,
                call_cost: float | None = None, call_effect: float | None = None) -> Policy:
    """The policy the flags given (None = not given) ask for; :class:`MaxF1` when none is given."""
    capacity = calls_per_day is not None or call_share is not None
    cost_given = [f for f, v in zip(COST_FLAGS, (slot_value, call_cost, call_effect)) if v is not None]
    if capacity and cost_given:
        raise NoshowError("choose one policy: capacity (--calls-per-day or --call-share) or cost "
                          "(--slot-value, --call-cost, --call-effect), not both")
    if calls_per_day is not None and call_share is not None:
        raise NoshowError("choose one of --calls-per-day and --call-share")
    if capacity:
        return Capacity(calls_per_day, call_share)
    if cost_given:
        missing = [f"--{f.replace('_', '-')}" for f in COST_FLAGS if f not in cost_given]
        if missing:
            raise NoshowError(f"the cost policy needs --slot-value, --call-cost and --call-effect; missing {', '.join(missing)}")
        return Cost(float(slot_value), float(call_cost), float(call_effect))
    return MaxF1()


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The policy flags, named after :data:`POLICY_FLAGS` (``--calls-per-day`` ...), with their
    types and help: the command line's, and the service's query parameters (none: max-F1 threshold)."""
    policy = parser.add_argument_group("flagging policy (default: the model's max-F1 threshold)")
    policy.add_argument("--calls-per-day", type=int, metavar="K", help="flag the K highest risks of each day")
    policy.add_argument("--call-share", type=float, metavar="S",
                        help="flag the highest share S (0 < S <= 1) of each day, rounded up")
    policy.add_argument("--slot-value", type=float, metavar="V", help="cost policy: value of a slot lost to a no-show")
    policy.add_argument("--call-cost", type=float, metavar="C", help="cost policy: cost of one call")
    policy.add_argument("--call-effect", type=float, metavar="E", help="cost policy: share of no-shows a call prevents (0 to 1)")
