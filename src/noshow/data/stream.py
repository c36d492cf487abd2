"""Training on files larger than memory: features built out of core, mini-batches read from disk.

1. :func:`typed_batches` reads the CSV in blocks with Arrow's incremental reader and parses each
   block with :func:`noshow.data.loader.typed_frame`, the loader's own strict parser (a bad value stops
   the run with a user error naming its column and file line).
2. :func:`patient_history` computes the causal history features over the whole file from 25 bytes
   per row; :func:`noshow.data.features.raw_features`, the same code as in memory, then builds each
   block's features. Rows are split by a hash of ``AppointmentID`` (10% validation, 20% test, the
   rest training: the same for a given file and seed, whatever the block size).
3. The feature pipeline is fitted on the training rows block by block
   (:meth:`~noshow.data.features.FeaturePipeline.fit_chunks`), then every block is encoded compactly and
   saved to a :class:`~noshow.data.encoded.ChunkStore`.
4. :func:`noshow.training.fit_ensemble` trains each member from the store, one block in memory at a
   time.

Compared with the in-memory path, the split is a hash, not stratified (no difference at millions
of rows), and the field count of each line is checked by Arrow rather than by the loader.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.loader import FIRST_DATA_LINE, check_columns, typed_frame
from noshow.data.encoded import ChunkStore
from noshow.errors import NoshowError
from noshow.data.features import HISTORY_INPUTS, FeaturePipeline, history_features, raw_features

PART = "_part"  # 0: train, 1: validation, 2: test
VAL_SHARE, TEST_SHARE = 0.1, 0.2


READ_BYTES = 1 << 20  # Arrow's read block: its reader buffers tens of blocks (seen: 175 MB at 1 MB
                      # blocks, 473 MB at 8 MB, 639 MB at 32 MB), so blocks stay small...
BLOCK_ROWS = 250_000  # ...and are gathered into frames of this many rows for polars.


def typed_batches(path: str | Path, block_rows: int = BLOCK_ROWS, read_bytes: int = READ_BYTES):
    """The file as typed polars frames of about ``block_rows`` rows each, read incrementally.

    Arrow's incremental CSV reader holds a bounded number of small blocks; polars' own streaming
    sinks buffered a growing share of the file here (279 MB at 10^6 rows, 454 MB at 3 x 10^6).
    """
    import pyarrow as pa
    from pyarrow import csv

    path = Path(path)
    if not path.is_file():
        raise NoshowError(f"{path}: file not found")
    try:
        header = path.open(encoding="utf-8").readline().strip().split(",")
        check_columns(path, header, S.ALL_COLUMNS)
        # Text only, empty fields as nulls: exactly what the in-memory loader hands to typed_frame.
        convert = csv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True,
                                     null_values=[""])
        reader = csv.open_csv(path, read_options=csv.ReadOptions(block_size=read_bytes, use_threads=False),
                              convert_options=convert)
        pending, rows, first_line = [], 0, FIRST_DATA_LINE

        def typed() -> pl.DataFrame:
            text = pl.from_arrow(pa.Table.from_batches(pending))
            return typed_frame(path, text, first_line=first_line)[0]

        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= block_rows:
                yield typed()
                pending, first_line, rows = [], first_line + rows, 0
        if pending:
            yield typed()
    except (pa.ArrowInvalid, UnicodeDecodeError, pl.exceptions.PolarsError) as exc:
        raise NoshowError(f"{path}: bad CSV content ({str(exc).splitlines()[0]})") from None


def patient_history(path: str | Path, read_bytes: int = READ_BYTES) -> pl.DataFrame:
    """:func:`~noshow.data.features.history_features` of every row, computed from 25 bytes per row
    (64-bit hash of the patient, day, booking time stamp and day, outcome) so that 10^7 rows fit
    in a few hundred MB."""
    parts = {c: [] for c in HISTORY_INPUTS}
    for batch in typed_batches(path, read_bytes=read_bytes):
        parts[S.PATIENT_KEY].append(batch[S.PATIENT_KEY].hash(0).to_numpy())
        for column in HISTORY_INPUTS[1:]:
            parts[column].append(batch[column])
    compact = pl.DataFrame({S.PATIENT_KEY: np.concatenate(parts.pop(S.PATIENT_KEY)),
                            **{c: pl.concat(chunks, rechunk=True) for c, chunks in parts.items()}})
    del parts
    return history_features(compact)


def _part(frame: pl.DataFrame, seed: int) -> pl.Series:
    share = (frame[S.APPOINTMENT_ID].hash(seed) % 1000).cast(pl.Float64) / 1000
    return pl.select(pl.when(share < VAL_SHARE).then(1).when(share < VAL_SHARE + TEST_SHARE).then(2)
                     .otherwise(0).cast(pl.Int8)).to_series()


def build_store(path: str | Path, folder: Path, dtype: str = "float32", seed: int = 0,
                block_rows: int = BLOCK_ROWS, read_bytes: int = READ_BYTES
                ) -> tuple[FeaturePipeline, dict[str, ChunkStore]]:
    """Out-of-core features of ``path`` in ``folder``: the fitted pipeline and a store per part.

    Three passes: patient history over the whole file (compactly); raw features per block, saved
    as Parquet, while the pipeline learns from the training rows; then each block encoded.
    """
    history = patient_history(path, read_bytes)
    blocks, offset = [], 0
    for i, batch in enumerate(typed_batches(path, block_rows, read_bytes)):
        past = history.slice(offset, batch.height)
        offset += batch.height
        raw = raw_features(batch, past=past).with_columns(batch[S.TARGET], _part(batch, seed).alias(PART))
        blocks.append(folder / f"raw_{i:05d}.parquet")
        raw.write_parquet(blocks[-1])
    del history
    pipeline = FeaturePipeline().fit_chunks(pl.read_parquet(b).filter(pl.col(PART) == 0) for b in blocks)
    prefixes: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i, block in enumerate(blocks):
        raw = pl.read_parquet(block)
        for code, name in enumerate(prefixes):
            rows = raw.filter(pl.col(PART) == code)
            if rows.height:
                prefix = str(folder / f"{name}_{i:05d}")
                pipeline.encode(rows, dtype=np.dtype(dtype)).save(prefix)
                np.save(f"{prefix}.y.npy", rows[S.TARGET].to_numpy().astype(np.int8), allow_pickle=False)
                prefixes[name].append(prefix)
        block.unlink()
    width = len(pipeline.feature_names)
    return pipeline, {name: ChunkStore(tuple(p), width) for name, p in prefixes.items()}


def train_streamed(path: str | Path, backend: str, config, progress: bool = False, device: str = "cpu"):
    """Train a model from a file larger than memory (see the module doc); returns
    (TrainedModel, EnsembleResult) like :func:`noshow.model.train_model`."""
    from noshow.data.loader import file_sha256
    from noshow.model import TrainedModel
    from noshow.clinic.reasons import REFERENCE_KEY
    from noshow.training.train import calibrate_and_threshold, training_metadata
    from noshow.training import fit_ensemble, make_model, predict_all

    with tempfile.TemporaryDirectory(prefix="noshow-stream-") as tmp:
        pipeline, stores = build_store(path, Path(tmp), config.dtype)
        sizes = {f"n_{name}": len(store) for name, store in stores.items()}
        if min(sizes["n_train"], sizes["n_val"]) < 50:
            raise NoshowError(f"{path}: too few rows to train ({sizes})")
        model = make_model(backend, stores["train"].width, config, device=device)
        result = fit_ensemble(model, stores["train"], None, config, stores["val"], progress=progress,
                              label=f"{backend} (streamed)")
        y_val = stores["val"].labels()
        calibrator, threshold, record = calibrate_and_threshold(predict_all(model, stores["val"]), y_val)
    data_record = {"source": str(path), "sha256": file_sha256(path), "synthetic": False,
                   "rows": sum(sizes.values()), "split": "hash", **sizes}
    metadata = training_metadata(backend, data_record, result, record.pop("val_pr_auc"))
    metadata["training"].update(record)
    metadata[REFERENCE_KEY] = _reason_reference(path)
    return TrainedModel(config, result.parameters, pipeline, threshold, metadata, calibrator), result


def _reason_reference(path: str | Path) -> dict:
    """The reasons' typical appointment from the training rows of the file's first block (medians
    and modes need no more than that many rows to settle)."""
    from noshow.clinic.reasons import reference_values

    batch = next(typed_batches(path))
    return reference_values(raw_features(batch).filter(_part(batch, 0) == 0))


# --------------------------------------------------------------------------------------------------
# The scaling benchmark: one fresh process per size


def _scaling_job(csv: str, threads: int, epochs: int) -> dict:
    """Build features out of core and train the NumPy twin streamed; time and memory."""
    from noshow.nn.config import MLPConfig
    from noshow.training import fit, make_backend
    from noshow.training.worker import peak_rss_mb

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noshow-stream-") as tmp:
        pipeline, stores = build_store(csv, Path(tmp))
        features_seconds = time.perf_counter() - started
        config = MLPConfig(epochs=epochs, patience=0)
        backend = make_backend("numpy", stores["train"].width, config)
        result = fit(backend, stores["train"], None, config, stores["val"])
        n_train = len(stores["train"])
    return {"features_seconds": features_seconds, "train_seconds": result.train_seconds,
            "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(), "n_train": n_train,
            "epochs": epochs, "val_pr_auc": result.history[-1].val_pr_auc, "threads": threads}


def scaling_run(rows: int, threads: int, epochs: int = 1) -> dict:
    """Write ``rows`` synthetic appointments, then measure :func:`_scaling_job` in a fresh process."""
    import subprocess

    from noshow.data.synth import write_synthetic
    from noshow.training.worker import THREAD_VARIABLES

    with tempfile.TemporaryDirectory(prefix="noshow-scale-") as tmp:
        csv = Path(tmp) / "synthetic.csv"
        write_synthetic(csv, rows, seed=rows % 997)
        env = {**os.environ, **{name: str(threads) for name in (*THREAD_VARIABLES, "POLARS_MAX_THREADS")}}
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, "-m", "noshow.data.stream", str(csv), str(threads), str(epochs), str(out)],
                       check=True, env=env)
        result = json.loads(out.read_text())
    return {"rows": rows, **result}


if __name__ == "__main__":
    _csv, _threads, _epochs, _out = sys.argv[1:5]
    Path(_out).write_text(json.dumps(_scaling_job(_csv, int(_threads), int(_epochs))))
