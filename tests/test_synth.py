"""Synthetic data: Kaggle schema, realistic marginals, known probabilities, reproducible."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score

from noshow.data import schema as S
from noshow.data import synth
from noshow.data.summary import summarize


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
    from conftest import run_main
    from noshow.data.loader import load

    out = tmp_path / "s.csv.gz"
    result = run_main("synth", "--rows", "200", "--seed", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert len(load(out)) == 200


# --------------------------------------------------------------------------------------------------
# Generation by blocks of whole patients

BLOCK = 4000  # small blocks, so that a few thousand rows make a multi-block file


def _marginals(frame: pl.DataFrame) -> dict[str, float]:
    """No-show rate, same-day share and weekday shares (Mon..Sat) of a text frame from synth."""
    typed = frame.select(
        (pl.col(S.LABEL) == "Yes").alias("no_show"),
        (pl.col(S.SCHEDULED_DAY).str.slice(0, 10) == pl.col(S.APPOINTMENT_DAY).str.slice(0, 10)).alias("same_day"),
        pl.col(S.APPOINTMENT_DAY).str.slice(0, 10).str.to_date().dt.weekday().alias("weekday"),
    )
    weekdays = {f"weekday_{d}": float((typed["weekday"] == d).mean()) for d in range(1, 7)}
    return {"no_show": float(typed["no_show"].mean()), "same_day": float(typed["same_day"].mean()), **weekdays}


@pytest.fixture(scope="module")
def multi_block() -> pl.DataFrame:
    """5 blocks of 4,000 rows."""
    return synth.synthesize(rows=5 * BLOCK, seed=11, block_rows=BLOCK)


def test_a_file_of_one_block_has_the_bytes_of_the_one_block_algorithm(tmp_path):
    # sha256 of this file as written before generation went by blocks: a file of one block, the
    # default file included (it fits in one), is unchanged, and so is every number quoted from it.
    assert synth.DEFAULT_ROWS <= synth.BLOCK_ROWS
    path = synth.write_synthetic(tmp_path / "s.csv", rows=500, seed=3)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == "6efaad2e66656c8cb799e63c42adee609da9ee5a7d090d13fbe48142d965108d"


def test_blocks_have_at_most_block_rows_and_add_up_to_rows():
    sizes = [len(b) for b in synth.synthetic_blocks(rows=2 * BLOCK + 123, seed=1, block_rows=BLOCK)]
    assert sizes == [BLOCK, BLOCK, 123]


def test_the_first_block_is_made_without_the_others():
    # Lazy: a file of 10^12 rows (8 TB per int64 column) yields its first block in a block's memory.
    first = next(synth.synthetic_blocks(rows=10**12, seed=1, block_rows=1000))
    assert len(first) == 1000


def test_multi_block_marginals_match_one_block(multi_block):
    one = _marginals(synth.synthesize(rows=5 * BLOCK, seed=11, block_rows=5 * BLOCK))
    many = _marginals(multi_block)
    assert many.keys() == one.keys()
    for name in one:
        assert abs(many[name] - one[name]) < 0.02, name
    assert 0.17 <= many["no_show"] <= 0.24
    assert 0.30 <= many["same_day"] <= 0.40


def test_multi_block_true_probability_is_calibrated(multi_block):
    p = multi_block[S.TRUE_PROBABILITY].cast(pl.Float64).to_numpy()
    assert abs(p.mean() - (multi_block[S.LABEL] == "Yes").mean()) < 0.02


def test_appointment_ids_are_unique_across_blocks(multi_block):
    assert multi_block[S.APPOINTMENT_ID].n_unique() == multi_block.height


def test_each_patient_lies_in_one_block(multi_block):
    # Patient ids are unique across blocks: a patient's rows never span two blocks.
    blocks = multi_block.with_row_index("row").select(S.PATIENT_ID, (pl.col("row") // BLOCK).alias("block"))
    assert blocks.group_by(S.PATIENT_ID).agg(pl.col("block").n_unique())["block"].max() == 1


def test_a_patient_has_the_same_attributes_in_every_row(multi_block):
    attributes = [S.GENDER, S.AGE, S.NEIGHBOURHOOD, *S.CONDITION_FLAGS, S.HANDICAP]
    distinct = multi_block.group_by(S.PATIENT_ID).agg(pl.col(c).n_unique() for c in attributes)
    assert all(distinct[c].max() == 1 for c in attributes)


def test_multi_block_file_is_byte_identical_for_the_same_seed(tmp_path):
    first, second = tmp_path / "a" / "s.csv.gz", tmp_path / "b" / "s.csv.gz"
    for path in (first, second):
        path.parent.mkdir()
        synth.write_synthetic(path, rows=2 * BLOCK + 10, seed=4, block_rows=BLOCK)
    assert first.read_bytes() == second.read_bytes()


def test_multi_block_file_holds_the_blocks_under_one_header(tmp_path):
    path = synth.write_synthetic(tmp_path / "s.csv", rows=2 * BLOCK + 10, seed=4, block_rows=BLOCK)
    written = pl.read_csv(path, infer_schema=False)
    assert written.equals(synth.synthesize(rows=2 * BLOCK + 10, seed=4, block_rows=BLOCK))


def test_blocks_after_the_first_differ(multi_block):
    # Each block has its own seed: no block repeats another's patients or draws.
    blocks = multi_block.with_row_index("row").with_columns((pl.col("row") // BLOCK).alias("block"))
    firsts = blocks.group_by("block").agg(pl.col(S.TRUE_PROBABILITY).head(50))[S.TRUE_PROBABILITY].to_list()
    assert len({tuple(f) for f in firsts}) == 5
