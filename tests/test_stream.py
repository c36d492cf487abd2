"""Out-of-core path: the same features as in memory, and training that reads chunks from disk."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from noshow.data import features as F
from noshow.data.stream import build_store, patient_history, typed_batches
from noshow.errors import NoshowError
from noshow.nn.config import MLPConfig
from noshow.nn.encoded import ChunkStore
from noshow.training import fit, make_backend


def test_blocks_parse_to_the_loader_frame(small_csv, small_data):
    blocks = list(typed_batches(small_csv, block_rows=500, read_bytes=16 << 10))
    assert len(blocks) > 3
    assert pl.concat(blocks).equals(small_data.frame)


def test_bad_value_in_a_late_block_names_its_file_line(small_csv, tmp_path):
    lines = small_csv.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[2500].split(",")  # file line 2501
    fields[header.index("Age")] = "abc"
    lines[2500] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(NoshowError, match="column Age, line 2501: 'abc' is not an integer"):
        list(typed_batches(bad, block_rows=500, read_bytes=16 << 10))


def test_blockwise_history_equals_in_memory_history(small_csv, small_data, tmp_path):
    assert patient_history(small_csv, tmp_path).equals(F.history_features(small_data.frame))


def test_blockwise_features_equal_in_memory_features(small_csv, small_data, tmp_path):
    blocks = list(typed_batches(small_csv, block_rows=500, read_bytes=16 << 10))
    assert len(blocks) > 3
    past = patient_history(small_csv, tmp_path)
    offset, pieces = 0, []
    for block in blocks:
        pieces.append(F.raw_features(block, past=past.slice(offset, block.height)))
        offset += block.height
    assert pl.concat(pieces).equals(F.raw_features(small_data.frame))


def test_streamed_training_reads_every_training_row_from_the_store(small_csv, tmp_path):
    pipeline, stores = build_store(small_csv, tmp_path, block_rows=500, read_bytes=16 << 10)
    assert isinstance(stores["train"], ChunkStore)
    assert len(stores["train"].prefixes) > 3
    n = {name: len(store) for name, store in stores.items()}
    assert sum(n.values()) == 3000
    assert 0.6 < n["train"] / 3000 < 0.8
    config = MLPConfig(epochs=2, patience=0)
    backend = make_backend("numpy", stores["train"].width, config)
    result = fit(backend, stores["train"], None, config, stores["val"])
    assert result.epochs_run == 2
    assert 0.2 < result.history[-1].val_pr_auc < 1.0
    assert np.isfinite(result.history[-1].loss)


def test_train_command_streams_and_the_model_predicts(small_csv, tmp_path):
    from conftest import run_main
    from noshow.data.loader import load
    from noshow.model import TrainedModel

    model = tmp_path / "m.npz"
    result = run_main("train", "--stream", "--data", str(small_csv), "--out", str(model), "--epochs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    loaded = TrainedModel.load(model)
    assert loaded.metadata["data"]["split"] == "hash"
    probability = loaded.predict_proba(load(small_csv))
    assert probability.shape == (3000,) and 0 < probability.mean() < 1


def test_parse_once_saves_each_day_of_a_block_with_its_file_rows(small_csv, small_data, tmp_path):
    from noshow.data import schema as S
    from noshow.data.stream import ROW, PatientHistory, parse_once

    history = PatientHistory(tmp_path)
    files = parse_once(small_csv, tmp_path, history, block_rows=500, read_bytes=16 << 10, by_day=True)
    assert sum(history.sizes) == 3000
    saved = pl.concat([pl.read_parquet(f) for f in files])
    assert all(pl.read_parquet(f)[S.APPOINTMENT_DATE].n_unique() == 1 for f in files)
    assert sorted(saved[ROW].to_list()) == list(range(3000))
    original = small_data.frame[saved[ROW].to_numpy()]
    assert saved.drop(ROW).equals(original)


@pytest.fixture(scope="module")
def scored(small_csv, tmp_path_factory):
    """A small model, a history file, and the in-memory and streamed scores of small_csv."""
    from conftest import run_main
    from noshow.data.synth import write_synthetic

    folder = tmp_path_factory.mktemp("scored")
    history = write_synthetic(folder / "history.csv", rows=2000, seed=11)
    model = folder / "m.npz"
    assert run_main("train", "--data", str(small_csv), "--out", str(model), "--epochs", "2", "--members", "2",
                    "--hidden", "16", "--quiet").returncode == 0
    for name, extra in (("memory", []), ("stream", ["--stream"])):
        done = run_main("predict", "--model", str(model), "--data", str(small_csv), "--history", str(history),
                        "--out", str(folder / f"{name}.csv"), "--quiet", *extra)
        assert done.returncode == 0, done.stderr
    return {name: pl.read_csv(folder / f"{name}.csv") for name in ("memory", "stream")}


def test_streamed_predict_gives_the_in_memory_scores_with_history(scored):
    memory, stream = (scored[k].sort("AppointmentID") for k in ("memory", "stream"))
    assert memory["AppointmentID"].equals(stream["AppointmentID"])
    # float32 sums depend on the chunk a row is scored in: 1e-7 apart before rounding to 6 decimals
    assert (memory["no_show_probability"] - stream["no_show_probability"]).abs().max() <= 2e-6
    assert (memory["flagged"] != stream["flagged"]).sum() <= 1
    # A rank may differ only where two appointments of the day are a near-tie (1e-5) in risk.
    swapped = memory.filter(memory["rank_in_day"] != stream["rank_in_day"])
    for day, risk in swapped.select("AppointmentDay", "no_show_probability").iter_rows():
        same_day = memory.filter(pl.col("AppointmentDay") == day)["no_show_probability"]
        assert ((same_day - risk).abs() < 1e-5).sum() >= 2, (day, risk)


def test_streamed_predict_writes_whole_days_in_date_order(scored, small_data):
    from noshow.data import schema as S

    days = small_data.frame.select(S.APPOINTMENT_ID, S.APPOINTMENT_DATE)
    order = scored["stream"].join(days, on=S.APPOINTMENT_ID, how="left", maintain_order="left")[S.APPOINTMENT_DATE]
    assert order.is_sorted()


def test_out_of_core_parts_take_the_in_memory_split_fractions(small_csv, small_data):
    from noshow.data.splits import make_split
    from noshow.data.stream import _part, typed_batches

    parts = np.concatenate([_part(batch, 0).to_numpy() for batch in typed_batches(small_csv)])
    in_memory = make_split(small_data.frame, "random", seed=0).sizes()
    n = len(parts)
    for code, name in ((1, "n_val"), (2, "n_test")):
        assert abs((parts == code).mean() - in_memory[name] / n) < 0.02, name
