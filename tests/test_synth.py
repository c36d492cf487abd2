"""Synthetic data: Kaggle schema, realistic marginals, known probabilities, reproducible."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score

from noshow.data import schema as S
from noshow.data import synth
from noshow.data.loader import summarize


def test_synthetic_columns_are_the_kaggle_schema_plus_true_probability():
    frame = synth.synthesize(rows=500, seed=1)
    assert frame.columns == [*S.ALL_COLUMNS, S.TRUE_PROBABILITY]


def test_same_seed_gives_identical_data():
    assert synth.synthesize(rows=500, seed=3).equals(synth.synthesize(rows=500, seed=3))


def test_different_seeds_give_different_data():
    assert not synth.synthesize(rows=500, seed=3).equals(synth.synthesize(rows=500, seed=4))


def test_synthetic_marginals_are_realistic(small_data):
    summary = summarize(small_data)
    assert 0.17 <= summary["no_show_rate"] <= 0.24
    assert 0.30 <= summary["same_day_share"] <= 0.40
    assert summary["patients"] < 0.8 * summary["rows"]  # repeat patients
    assert summary["neighbourhoods"] >= 60


def test_true_probability_is_calibrated(small_data):
    p = small_data.frame[S.TRUE_PROBABILITY].to_numpy()
    y = small_data.frame[S.TARGET].to_numpy()
    assert np.all((p > 0) & (p < 1))
    assert abs(p.mean() - y.mean()) < 0.02


def test_same_day_bookings_rarely_miss(small_data):
    frame = small_data.frame.with_columns(
        (pl.col(S.APPOINTMENT_DATE) == pl.col(S.SCHEDULED_DATE)).alias("same_day")
    )
    rates = dict(frame.group_by("same_day").agg(pl.col(S.TARGET).mean()).iter_rows())
    assert rates[True] < 0.12 < rates[False]


def test_true_probability_ranks_better_than_chance(small_data):
    frame = small_data.frame
    assert average_precision_score(frame[S.TARGET], frame[S.TRUE_PROBABILITY]) > 0.35


def test_synth_command_writes_a_loadable_file(tmp_path):
    from conftest import run_cli
    from noshow.data.loader import load

    out = tmp_path / "s.csv.gz"
    result = run_cli("synth", "--rows", "200", "--seed", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert len(load(out)) == 200
