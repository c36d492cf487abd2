"""Train / validation / test splits. Same frame, kind and seed give the same split, always.

- ``random``: stratified on the label; 20% test, then 10% of the rest for validation.
- ``time``: the last 20% of distinct appointment days are the test set and the last 10% of the
  remaining days the validation set, so the model is always judged on days after those it learnt.
- ``patient``: grouped by patient, so no patient is in two parts (same proportions as ``random``).

A model for use (``noshow train``) holds out no test part (``hold_out_test=False``): it learns from
every row except the validation part, which chooses early stopping, threshold and calibration. That
part is then 10% of all rows (``random``: stratified; ``patient``: grouped), or for ``time`` the
last 10% of distinct appointment days, the most recent ones, so the model is tuned on the days
closest to those it will score; ``compare`` keeps the three parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from noshow.data import schema as S

SPLITS = ("random", "time", "patient")
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1  # of what remains after the test part


@dataclass(frozen=True)
class Split:
    """Row indices (into the loaded frame) of each part, each sorted ascending."""

    kind: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int = 0  # the split's seed (the time split ignores it)

    def sizes(self) -> dict[str, int]:
        return {"n_train": len(self.train), "n_val": len(self.val), "n_test": len(self.test)}


def _random(frame: pl.DataFrame, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(frame.height)
    y = frame[S.TARGET].to_numpy() if S.TARGET in frame.columns else None
    rest, test = train_test_split(rows, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    y_rest = y[rest] if y is not None else None
    train, val = train_test_split(rest, test_size=VAL_FRACTION, random_state=seed, stratify=y_rest)
    return train, val, test


def _last_days(days: np.ndarray, fraction: float) -> np.ndarray:
    """The last ``fraction`` of the distinct values in ``days`` (at least one)."""
    distinct = np.unique(days)
    n_last = max(1, int(round(fraction * len(distinct))))
    return distinct[-n_last:]


def _time(frame: pl.DataFrame, seed: int) -> tuple[np.ndarray, ...]:
    del seed  # the time split is fully determined by the dates
    days = frame[S.APPOINTMENT_DATE].to_numpy()
    rows = np.arange(frame.height)
    is_test = np.isin(days, _last_days(days, TEST_FRACTION))
    rest = rows[~is_test]
    is_val = np.isin(days[rest], _last_days(days[rest], VAL_FRACTION))
    return rest[~is_val], rest[is_val], rows[is_test]


def _patient(frame: pl.DataFrame, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import GroupShuffleSplit

    groups = frame[S.PATIENT_KEY].to_numpy()
    rows = np.arange(frame.height)
    outer = GroupShuffleSplit(n_splits=1, test_size=TEST_FRACTION, random_state=seed)
    rest, test = next(outer.split(rows, groups=groups))
    inner = GroupShuffleSplit(n_splits=1, test_size=VAL_FRACTION, random_state=seed)
    train, val = next(inner.split(rest, groups=groups[rest]))
    return rest[train], rest[val], test


def _random_for_use(frame: pl.DataFrame, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(frame.height)
    y = frame[S.TARGET].to_numpy() if S.TARGET in frame.columns else None
    train, val = train_test_split(rows, test_size=VAL_FRACTION, random_state=seed, stratify=y)
    return train, val, rows[:0]


def _time_for_use(frame: pl.DataFrame, seed: int) -> tuple[np.ndarray, ...]:
    del seed
    days = frame[S.APPOINTMENT_DATE].to_numpy()
    rows = np.arange(frame.height)
    is_val = np.isin(days, _last_days(days, VAL_FRACTION))
    return rows[~is_val], rows[is_val], rows[:0]


def _patient_for_use(frame: pl.DataFrame, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import GroupShuffleSplit

    rows = np.arange(frame.height)
    splitter = GroupShuffleSplit(n_splits=1, test_size=VAL_FRACTION, random_state=seed)
    train, val = next(splitter.split(rows, groups=frame[S.PATIENT_KEY].to_numpy()))
    return train, val, rows[:0]


def make_split(frame: pl.DataFrame, kind: str = "random", seed: int = 0, hold_out_test: bool = True) -> Split:
    """Split ``frame``'s rows into train, validation and test parts (test empty for a model for
    use, ``hold_out_test=False``: see the module doc)."""
    makers = {"random": _random, "time": _time, "patient": _patient}
    if not hold_out_test:
        makers = {"random": _random_for_use, "time": _time_for_use, "patient": _patient_for_use}
    if kind not in makers:
        raise ValueError(f"unknown split {kind!r}; choose one of {', '.join(SPLITS)}")
    train, val, test = makers[kind](frame, seed)
    return Split(kind, np.sort(train), np.sort(val), np.sort(test), seed)
