"""Splits: sizes, disjointness, the time order, patient grouping and reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from noshow.data import schema as S
from noshow.data.splits import make_split


@pytest.mark.parametrize("kind", ["random", "time", "patient"])
def test_parts_are_disjoint_and_cover_every_row(kind, small_data):
    split = make_split(small_data.frame, kind, seed=0)
    together = np.concatenate([split.train, split.val, split.test])
    assert len(together) == len(small_data)
    assert np.array_equal(np.sort(together), np.arange(len(small_data)))


@pytest.mark.parametrize("kind", ["random", "time", "patient"])
def test_same_seed_gives_same_split(kind, small_data):
    a, b = make_split(small_data.frame, kind, seed=3), make_split(small_data.frame, kind, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test)))


def test_random_split_is_stratified_20_percent_test_then_10_percent_val(small_data):
    split = make_split(small_data.frame, "random", seed=0)
    y = small_data.frame[S.TARGET].to_numpy()
    assert len(split.test) == 600
    assert len(split.val) == 240
    assert abs(y[split.test].mean() - y.mean()) < 0.005
    assert abs(y[split.val].mean() - y.mean()) < 0.01


def test_random_split_changes_with_seed(small_data):
    assert not np.array_equal(make_split(small_data.frame, "random", 0).test, make_split(small_data.frame, "random", 1).test)


def test_time_split_tests_on_the_last_days(small_data):
    split = make_split(small_data.frame, "time")
    dates = small_data.frame[S.APPOINTMENT_DATE].to_numpy()
    assert dates[split.train].max() < dates[split.val].min()
    assert dates[split.val].max() < dates[split.test].min()
    n_days = len(np.unique(dates))
    assert len(np.unique(dates[split.test])) == round(0.2 * n_days)


@pytest.mark.realdata
def test_time_split_on_real_file_holds_the_last_fifth_of_days(real_data):
    split = make_split(real_data.frame, "time")
    dates = real_data.frame[S.APPOINTMENT_DATE].to_numpy()
    assert len(np.unique(dates[split.test])) == round(0.2 * 27)
    assert 0.15 < len(split.test) / len(real_data) < 0.25


def test_patient_split_keeps_each_patient_in_one_part(small_data):
    split = make_split(small_data.frame, "patient", seed=0)
    patients = small_data.frame[S.PATIENT_KEY].to_numpy()
    parts = [set(patients[idx]) for idx in (split.train, split.val, split.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
