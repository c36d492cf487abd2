"""Files larger than memory: the CSV parsed once into typed blocks, features built out of core.

1. :func:`typed_batches` reads the CSV in blocks with Arrow's incremental reader and parses each
   block with :func:`noshow.data.loader.typed_frame`, the loader's own strict parser (a bad value stops
   the run with a user error naming its column and file line). This is the only time the text is
   parsed: :func:`parse_once` saves each typed block as Parquet and keeps the 25 bytes per row
   that the patient history needs.
2. :func:`noshow.data.features.history_features` runs once over those compact columns of the
   whole file; :func:`noshow.data.features.raw_features`, the same code as in memory, then builds
   each block's features from its Parquet copy. Rows are split by a hash of ``AppointmentID``
   (10% validation, 20% test, the rest training: the same for a given file and seed, whatever the
   block size).
3. The feature pipeline is fitted on the training rows as the blocks go by
   (:meth:`~noshow.data.features.FeaturePipeline.fit_chunks`), then every block is encoded compactly and
   saved to a :class:`~noshow.data.encoded.ChunkStore`, from which
   :func:`noshow.training.train.train_streamed` trains one block in memory at a time.

Compared with the in-memory path, the split is a hash, not stratified (no difference at millions
of rows), and the field count of each line is checked by Arrow rather than by the loader.
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.splits import TEST_FRACTION, VAL_FRACTION
from noshow.data.loader import FIRST_DATA_LINE, GZIP_MAGIC, check_columns, typed_frame
from noshow.data.encoded import ChunkStore
from noshow.errors import NoshowError
from noshow.data.features import HISTORY_INPUTS, FeaturePipeline, history_features, raw_features

PART = "_part"  # 0: train, 1: validation, 2: test
# The same shares of rows as the in-memory splits: the test fraction of all rows, then the
# validation fraction of the rest.
TEST_SHARE = TEST_FRACTION
VAL_SHARE = VAL_FRACTION * (1 - TEST_FRACTION)


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
        gz = path.open("rb").read(2) == GZIP_MAGIC  # gzip by its magic number, as the loader does
        with (gzip.open(path, "rt", encoding="utf-8") if gz else path.open(encoding="utf-8")) as text:
            header = text.readline().strip().split(",")
        check_columns(path, header, S.ALL_COLUMNS)
        # Text only, empty fields as nulls: exactly what the in-memory loader hands to typed_frame.
        convert = csv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True,
                                     null_values=[""])
        reader = csv.open_csv(pa.input_stream(str(path), compression="gzip" if gz else None), read_options=csv.ReadOptions(block_size=read_bytes, use_threads=False),
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


def _compact_history_inputs(frame: pl.DataFrame) -> dict:
    """The :data:`~noshow.data.features.HISTORY_INPUTS` of a typed block, the patient as a 64-bit
    hash; an unknown outcome (no label column) counts as a show, as in memory."""
    outcome = (frame[S.TARGET].fill_null(0) if S.TARGET in frame.columns
               else pl.Series(S.TARGET, np.zeros(frame.height, np.int8)))
    return {S.PATIENT_KEY: frame[S.PATIENT_KEY].hash(0).to_numpy(),
            **{c: frame[c] for c in HISTORY_INPUTS[1:-1]}, S.TARGET: outcome.cast(pl.Int8)}


def _history_of(parts: list[dict]) -> pl.DataFrame:
    """:func:`~noshow.data.features.history_features` of blocks' compact inputs, in block order."""
    columns = {c: [p[c] for p in parts] for c in HISTORY_INPUTS}
    parts.clear()
    compact = pl.DataFrame({S.PATIENT_KEY: np.concatenate(columns.pop(S.PATIENT_KEY)),
                            **{c: pl.concat(chunks, rechunk=True) for c, chunks in columns.items()}})
    del columns
    return history_features(compact)


def patient_history(path: str | Path, read_bytes: int = READ_BYTES) -> pl.DataFrame:
    """:func:`~noshow.data.features.history_features` of every row, computed from 25 bytes per row
    (64-bit hash of the patient, day, booking time stamp and day, outcome) so that 10^7 rows fit
    in a few hundred MB."""
    return _history_of([_compact_history_inputs(b) for b in typed_batches(path, read_bytes=read_bytes)])


def parse_once(path: str | Path, folder: Path | None, block_rows: int = BLOCK_ROWS, read_bytes: int = READ_BYTES,
               name: str = "typed", by_day: bool = False, skip_ids: np.ndarray | None = None
               ) -> tuple[list[Path], list[dict]]:
    """Parse the CSV once: each typed block saved as Parquet in ``folder`` (LZ4; reading it back
    is far faster than parsing the text again; nothing is saved when ``folder`` is None), and each
    block's compact history inputs. With ``by_day``, each block is saved as one file per
    appointment day, ``<name>_<day number>_<block>.parquet``, with its rows' file positions in a
    ``_row`` column, so that whole days can be read back together. Rows whose ``AppointmentID`` is
    in ``skip_ids`` are left out. Returns (files, compact inputs); give the latter to
    :func:`_history_of`."""
    files, compact, offset = [], [], 0
    for i, batch in enumerate(typed_batches(path, block_rows, read_bytes)):
        if skip_ids is not None:
            batch = batch.filter(~pl.col(S.APPOINTMENT_ID).is_in(pl.Series(skip_ids).implode()))
        compact.append(_compact_history_inputs(batch))
        if folder is not None and not by_day:
            files.append(folder / f"{name}_{i:05d}.parquet")
            batch.write_parquet(files[-1], compression="lz4")
        elif folder is not None:
            indexed = batch.with_row_index(ROW, offset)
            for (day,), rows in indexed.partition_by(S.APPOINTMENT_DATE, as_dict=True, maintain_order=True).items():
                files.append(folder / f"{name}_{day_number(day):06d}_{i:05d}.parquet")
                rows.write_parquet(files[-1], compression="lz4")
        offset += batch.height
    return files, compact


ROW = "_row"  # a row's position in its file (0-based), kept beside rows saved by day


def day_number(day) -> int:
    """Days since 1970-01-01 of a date (polars' physical Date value)."""
    return (day - dt.date(1970, 1, 1)).days


def _part(frame: pl.DataFrame, seed: int) -> pl.Series:
    share = (frame[S.APPOINTMENT_ID].hash(seed) % 1000).cast(pl.Float64) / 1000
    return pl.select(pl.when(share < VAL_SHARE).then(1).when(share < VAL_SHARE + TEST_SHARE).then(2)
                     .otherwise(0).cast(pl.Int8)).to_series()


def build_store(path: str | Path, folder: Path, dtype: str = "float32", seed: int = 0,
                block_rows: int = BLOCK_ROWS, read_bytes: int = READ_BYTES
                ) -> tuple[FeaturePipeline, dict[str, ChunkStore]]:
    """Out-of-core features of ``path`` in ``folder``: the fitted pipeline and a store per part.

    One parse of the text (:func:`parse_once`); the patient history over the whole file from its
    compact columns; raw features per typed block, saved, while the pipeline learns from their
    training rows; then each block encoded.
    """
    typed, compact = parse_once(path, folder, block_rows, read_bytes)
    history = _history_of(compact)
    blocks: list[Path] = []

    def training_rows():
        offset = 0
        for i, block in enumerate(typed):
            frame = pl.read_parquet(block)
            block.unlink()
            raw = (raw_features(frame, past=history.slice(offset, frame.height))
                   .with_columns(frame[S.TARGET], _part(frame, seed).alias(PART)))
            offset += frame.height
            blocks.append(folder / f"raw_{i:05d}.parquet")
            raw.write_parquet(blocks[-1], compression="lz4")
            yield raw.filter(pl.col(PART) == 0)

    pipeline = FeaturePipeline().fit_chunks(training_rows())
    del history
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
