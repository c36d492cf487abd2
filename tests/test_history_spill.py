"""The patient history out of core: buckets of patients on disk give exactly the in-memory history."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from noshow.data import features as F
from noshow.data import schema as S
from noshow.data.stream import PatientHistory, build_store, parse_once, patient_history, typed_batches

SMALL_BLOCKS = {"block_rows": 500, "read_bytes": 16 << 10}


@pytest.mark.parametrize("buckets", [1, 5, 64])
def test_history_in_buckets_equals_in_memory_history(small_csv, small_data, tmp_path, buckets):
    blocks = [b[S.PATIENT_KEY] for b in typed_batches(small_csv, **SMALL_BLOCKS)]
    blocks_of_patient = pl.concat([b.unique() for b in blocks]).value_counts()["count"]
    assert len(blocks) > 3 and blocks_of_patient.max() == len(blocks)  # patients spread over every block
    history = patient_history(small_csv, tmp_path, **SMALL_BLOCKS, buckets=buckets)
    assert history.equals(F.history_features(small_data.frame))
    assert history["days_since_previous"].null_count() > 0


def test_history_of_blocks_left_empty_by_skipped_rows(small_csv, small_data, tmp_path):
    first_block = next(typed_batches(small_csv, **SMALL_BLOCKS))
    history = PatientHistory(tmp_path)
    parse_once(small_csv, None, history, **SMALL_BLOCKS, skip_ids=first_block[S.APPOINTMENT_ID].to_numpy())
    assert history.sizes[0] == 0
    past = np.concatenate(list(history.blocks(buckets=3)), axis=1)
    kept = small_data.frame.slice(first_block.height)
    assert F.history_frame(past).equals(F.history_features(kept))


def test_history_of_the_first_blocks_only(small_csv, small_data, tmp_path):
    history = PatientHistory(tmp_path)
    parse_once(small_csv, None, history, **SMALL_BLOCKS)
    first = list(history.blocks(count=2, buckets=4))
    rows = sum(history.sizes[:2])
    assert F.history_frame(np.concatenate(first, axis=1)).equals(F.history_features(small_data.frame).head(rows))
    assert list(tmp_path.iterdir()) == []


def test_history_files_are_removed_once_read(small_csv, tmp_path):
    patient_history(small_csv, tmp_path, **SMALL_BLOCKS, buckets=5)
    assert list(tmp_path.iterdir()) == []


def test_streamed_store_is_the_same_with_several_buckets(small_csv, tmp_path):
    stores = {}
    for buckets in (1, 6):
        folder = tmp_path / str(buckets)
        folder.mkdir()
        stores[buckets] = build_store(small_csv, folder, **SMALL_BLOCKS, buckets=buckets)[1]
        assert not list(folder.glob("history_*")) and not list(folder.glob("*.parquet"))
    for name, store in stores[1].items():
        other = stores[6][name]
        assert len(store.prefixes) == len(other.prefixes) > 3
        for i in range(len(store.prefixes)):
            (X, y), (X6, y6) = store.chunk(i), other.chunk(i)
            assert np.array_equal(X.dense, X6.dense) and np.array_equal(X.hot, X6.hot) and np.array_equal(y, y6)


@pytest.mark.parametrize("empty_blocks", [False, True])
def test_each_day_file_gets_its_own_rows_history_over_several_blocks(small_csv, small_data, tmp_path, empty_blocks):
    from noshow.clinic.scoring_stream import _past_file, _save_past
    from noshow.data.stream import ROW

    history = PatientHistory(tmp_path / "history")
    (tmp_path / "history").mkdir()
    files = parse_once(small_csv, tmp_path, history, **SMALL_BLOCKS, by_day=True, name="day")
    assert len(history.sizes) > 3
    blocks = list(history.blocks(buckets=3))
    if empty_blocks:  # blocks whose rows were all skipped: no day file, no rows
        empty = np.zeros((8, 0), np.int32)
        blocks = [empty, blocks[0], empty, *blocks[1:], empty]
    _save_past(files, blocks)
    expected = F.history_features(small_data.frame)
    for path in files:
        rows = pl.read_parquet(path, columns=[ROW])[ROW].to_numpy()
        past = F.history_frame(np.load(_past_file(path), allow_pickle=False))
        assert past.equals(expected[rows])
