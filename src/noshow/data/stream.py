"""Files larger than memory: the CSV parsed once into typed blocks, features built out of core.

1. :func:`typed_batches` reads the CSV in blocks with Arrow's incremental reader and parses each
   block with :func:`noshow.data.loader.typed_frame`, the loader's own strict parser (a bad value stops
   the run with a user error naming its column and file line). This is the only time the text is
   parsed: :func:`parse_once` saves each typed block as Parquet and spills to disk the 29 bytes
   per row that the patient history needs, sorted by a 64-bit hash of the patient
   (:class:`PatientHistory`).
2. The patient history is computed one bucket of patients at a time (a range of the hashes, about
   :data:`BUCKET_ROWS` rows): every history feature depends only on the same patient's rows, so
   :func:`noshow.data.features.history_features`' own code over a bucket gives those rows exactly
   their history in the whole file. :func:`noshow.data.features.raw_features`, the same code as in
   memory, then builds each block's features from its Parquet copy and its history read back from
   disk. Rows are split by a hash of ``AppointmentID`` (10% validation, 20% test, the rest
   training: the same for a given file and seed, whatever the block size).
3. The feature pipeline is fitted on the training rows as the blocks go by
   (:meth:`~noshow.data.features.FeaturePipeline.fit_chunks`), then every block is encoded compactly and
   saved to a :class:`~noshow.nn.encoded.ChunkStore`, from which
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

from noshow.data import roles
from noshow.data import schema as S
from noshow.data.features import HISTORY_INPUTS, FeaturePipeline, history_arrays, history_frame, raw_features, spec_of
from noshow.data.loader import FIRST_DATA_LINE, GZIP_MAGIC, SEPARATORS, check_columns, export_typed_frame, typed_frame
from noshow.data.schema_file import Schema
from noshow.data.splits import TEST_FRACTION, VAL_FRACTION
from noshow.errors import NoshowError
from noshow.nn.encoded import ChunkStore

PART = "_part"  # 0: train, 1: validation, 2: test
# The same shares of rows as the in-memory splits: the test fraction of all rows, then the
# validation fraction of the rest.
TEST_SHARE = TEST_FRACTION
VAL_SHARE = VAL_FRACTION * (1 - TEST_FRACTION)


READ_BYTES = 1 << 20  # Arrow's read block: its reader buffers tens of blocks (seen: 175 MB at 1 MB
                      # blocks, 473 MB at 8 MB, 639 MB at 32 MB), so blocks stay small...
BLOCK_ROWS = 250_000  # ...and are gathered into frames of this many rows for polars.


def typed_batches(path: str | Path, block_rows: int = BLOCK_ROWS, read_bytes: int = READ_BYTES,
                  schema: Schema | None = None):
    """The file as typed polars frames of about ``block_rows`` rows each, read incrementally: the
    Kaggle layout (comma-separated), or a clinic's export through ``schema`` (its separator the one
    that splits the header into the most of the schema's columns), both UTF-8.

    Arrow's incremental CSV reader holds a bounded number of small blocks; polars' own streaming
    sinks buffered a growing share of the file here (279 MB at 10^6 rows, 454 MB at 3 x 10^6).
    """
    import pyarrow as pa
    from pyarrow import csv

    from noshow.data.fhir import is_fhir

    path = Path(path)
    if is_fhir(path):
        raise NoshowError(f"{path}: a FHIR export is read in memory, not streamed from disk (drop --stream)")
    if not path.is_file():
        raise NoshowError(f"{path}: file not found")
    try:
        gz = path.open("rb").read(2) == GZIP_MAGIC  # gzip by its magic number, as the loader does
        with (gzip.open(path, "rt", encoding="utf-8") if gz else path.open(encoding="utf-8")) as text:
            line = text.readline().strip()
        separator = ","
        if schema is not None:
            wanted = set(roles.mapped_columns(schema, require_label=True))
            separator = max(SEPARATORS, key=lambda sep: len(wanted & set(line.split(sep))))
        header = line.split(separator)
        check_columns(path, header, S.ALL_COLUMNS if schema is None else roles.mapped_columns(schema, True))
        # Text only, empty fields as nulls: exactly what the in-memory loader hands to typed_frame.
        convert = csv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True,
                                     null_values=[""])
        reader = csv.open_csv(pa.input_stream(str(path), compression="gzip" if gz else None),
                              read_options=csv.ReadOptions(block_size=read_bytes, use_threads=False),
                              parse_options=csv.ParseOptions(delimiter=separator), convert_options=convert)
        pending, rows, first_line = [], 0, FIRST_DATA_LINE

        def typed() -> pl.DataFrame:
            text = pl.from_arrow(pa.Table.from_batches(pending))
            if schema is not None:
                return export_typed_frame(path, text, schema, first_line=first_line)[0]
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


# A typed block's history inputs on disk, beside its patients' 64-bit hashes (8 bytes, a file of
# their own, sorted): the row's position in its block, day numbers, booking time stamp, outcome.
INPUTS = np.dtype([("pos", "<i4"), ("day", "<i4"), ("booked_at", "<i8"), ("booked_day", "<i4"), ("outcome", "i1")])
# Rows of one bucket of patients. A bucket's history peaks near 135 bytes a row (its inputs, sort
# orders and results), about 135 MB here. Measured on synthetic rows: the history's time per row
# falls with the bucket's size (0.62 us at 4 x 10^6 rows, 0.42 at 2 x 10^6, 0.37 at 10^6, 0.32 at
# 2.5 x 10^5: the sorts fit the caches better), but each bucket costs two reads and one append per
# block (48 us), a count of file operations that grows with the square of the rows: 4 x 10^4 of
# them (2 s) at 10^8 rows with this size, four times as many with buckets four times smaller, for
# about as much time gained in the sorts. The count of buckets is chosen once the file is parsed
# and its rows are counted, so a file of up to 10^6 rows is one bucket (no tiny files) and a
# bucket does not grow with the file.
BUCKET_ROWS = 1_000_000


def _history_inputs(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A typed block's history inputs: (n,) uint64 patient hashes and (n,) :data:`INPUTS` records.
    An unknown outcome (no label column) counts as a show, as in memory."""
    inputs = np.empty(frame.height, INPUTS)
    inputs["pos"] = np.arange(frame.height)
    for field, column in zip(("day", "booked_at", "booked_day"), HISTORY_INPUTS[1:-1]):
        inputs[field] = frame[column].to_physical().to_numpy()  # days, time stamps as integers
    inputs["outcome"] = frame[S.TARGET].fill_null(0).to_numpy() if S.TARGET in frame.columns else 0
    return frame[S.PATIENT_KEY].hash(0).to_numpy(), inputs


class PatientHistory:
    """:func:`~noshow.data.features.history_features` of a file's rows, out of core: memory for
    one block and one bucket of patients, whatever the file's size.

    :meth:`add` spills each typed block's history inputs to ``folder`` (29 bytes a row), sorted by
    patient hash. :meth:`blocks` then cuts the hashes into equal ranges, buckets of about
    :data:`BUCKET_ROWS` rows (every history feature depends only on the rows of the same patient,
    and a patient lies in one bucket). Ranges rather than a hash modulo: every bucket is then one
    slice of each block's sorted files, whatever their number, so the number waits until the rows
    are counted. Each bucket's history is computed in memory and appended to each block's result
    file, which then gives the block's history back in its row order. The result does not depend
    on the row order within a bucket: the history is a function of each row's values and of the
    same patient's other rows. Files: ``<name>_<kind>_<block>.bin``, plain binary arrays.
    """

    def __init__(self, folder: Path, name: str = "history"):
        self.folder, self.name = Path(folder), name
        self.sizes: list[int] = []  # rows of each block added

    def _file(self, kind: str, block: int) -> Path:
        return self.folder / f"{self.name}_{kind}_{block:05d}.bin"

    def add(self, frame: pl.DataFrame) -> None:
        """Spill a typed block's history inputs, sorted by patient hash."""
        key, inputs = _history_inputs(frame)
        order = np.argsort(key)
        key[order].tofile(self._file("key", len(self.sizes)))
        inputs[order].tofile(self._file("in", len(self.sizes)))
        self.sizes.append(frame.height)

    def _read(self, kind: str, dtype, block: int, start: int, stop: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        return np.fromfile(self._file(kind, block), dtype, stop - start, offset=start * dtype.itemsize)

    def _bounds(self, buckets: int) -> np.ndarray:
        """(blocks, buckets + 1): where each bucket's rows start in each block's sorted files."""
        edges = np.array([(b << 64) // buckets for b in range(1, buckets)], np.uint64)

        def block_bounds(i: int, size: int) -> np.ndarray:
            # The sorted hashes' file mapped, not read: a search touches a few pages of it.
            keys = np.memmap(self._file("key", i), np.uint64, "r") if size else np.zeros(0, np.uint64)
            return np.r_[0, np.searchsorted(keys, edges), size]

        return np.array([block_bounds(i, size) for i, size in enumerate(self.sizes)], np.int64).reshape(-1, buckets + 1)

    def _compute(self, buckets: int) -> None:
        """Each bucket's history, appended to each block's result file: (rows, 9) int32, the row's
        position in its block, then the :data:`~noshow.data.features.HISTORY` columns (-1 for no
        earlier day), in the order of the block's sorted files. The input files are removed."""
        bounds = self._bounds(buckets)
        for i in range(len(self.sizes)):
            self._file("out", i).write_bytes(b"")
        for b in range(buckets):
            spans = [(i, int(start), int(stop)) for i, (start, stop) in enumerate(bounds[:, b:b + 2]) if stop > start]
            key = np.concatenate([np.zeros(0, np.uint64), *(self._read("key", np.uint64, *span) for span in spans)])
            inputs = np.concatenate([np.zeros(0, INPUTS), *(self._read("in", INPUTS, *span) for span in spans)])
            pos, *fields = (np.ascontiguousarray(inputs[f])
                            for f in ("pos", "day", "outcome", "booked_at", "booked_day"))
            del inputs
            columns = history_arrays(key, *fields)
            del key, fields
            done = 0
            for i, start, stop in spans:
                rows = slice(done, done + stop - start)
                with self._file("out", i).open("ab") as handle:
                    np.column_stack([pos[rows], *(c[rows] for c in columns)]).tofile(handle)
                done = rows.stop
        self._remove("key", "in")

    def _remove(self, *kinds: str) -> None:
        for i in range(len(self.sizes)):
            for kind in kinds:
                self._file(kind, i).unlink(missing_ok=True)

    def blocks(self, count: int | None = None, buckets: int | None = None):
        """The history of each of the first ``count`` blocks (all by default), in block order: an
        (8, rows) int32 array in the block's row order, the :data:`~noshow.data.features.HISTORY`
        columns with -1 for no earlier day (:func:`~noshow.data.features.history_frame` makes it the
        frame :func:`~noshow.data.features.history_features` returns). ``buckets``: the number of
        buckets (by default enough for :data:`BUCKET_ROWS` rows each). Every file is removed by the
        end, each block's as soon as it is read."""
        try:
            self._compute(buckets or max(1, -(-sum(self.sizes) // BUCKET_ROWS)))
            for i in range(len(self.sizes) if count is None else count):
                out = np.fromfile(self._file("out", i), np.int32).reshape(-1, 9)
                self._file("out", i).unlink()
                history = np.empty((8, len(out)), np.int32)
                history[:, out[:, 0]] = out[:, 1:].T
                yield history
        finally:
            self._remove("key", "in", "out")


def patient_history(path: str | Path, folder: Path, block_rows: int = BLOCK_ROWS, read_bytes: int = READ_BYTES,
                    buckets: int | None = None) -> pl.DataFrame:
    """:func:`~noshow.data.features.history_features` of every row of ``path``, computed out of core
    (:class:`PatientHistory`, its files in ``folder``) and returned whole."""
    history = PatientHistory(folder)
    parse_once(path, None, history, block_rows, read_bytes)
    return history_frame(np.concatenate([np.zeros((8, 0), np.int32), *history.blocks(buckets=buckets)], axis=1))


def parse_once(path: str | Path, folder: Path | None, history: PatientHistory, block_rows: int = BLOCK_ROWS,
               read_bytes: int = READ_BYTES, name: str = "typed", by_day: bool = False,
               skip_ids: np.ndarray | None = None, schema: Schema | None = None) -> list[Path]:
    """Parse the CSV once: each typed block saved as Parquet in ``folder`` (LZ4; reading it back
    is far faster than parsing the text again; nothing is saved when ``folder`` is None), and each
    block's history inputs added to ``history``. With ``by_day``, each block is saved as one file
    per appointment day, ``<name>_<day number>_<block>.parquet``, with its rows' file positions in a
    ``_row`` column, so that whole days can be read back together. Rows whose ``AppointmentID`` is
    in ``skip_ids`` are left out; ``schema`` as for :func:`typed_batches`. Returns the files saved."""
    files, offset = [], 0
    for i, batch in enumerate(typed_batches(path, block_rows, read_bytes, schema)):
        if skip_ids is not None:
            batch = batch.filter(~pl.col(S.APPOINTMENT_ID).is_in(pl.Series(skip_ids).implode()))
        history.add(batch)
        if folder is not None and not by_day:
            files.append(folder / f"{name}_{i:05d}.parquet")
            batch.write_parquet(files[-1], compression="lz4")
        elif folder is not None:
            indexed = batch.with_row_index(ROW, offset)
            for (day,), rows in indexed.partition_by(S.APPOINTMENT_DATE, as_dict=True, maintain_order=True).items():
                files.append(folder / f"{name}_{day_number(day):06d}_{i:05d}.parquet")
                rows.write_parquet(files[-1], compression="lz4")
        offset += batch.height
    return files


ROW = "_row"  # a row's position in its file (0-based), kept beside rows saved by day


def day_number(day) -> int:
    """Days since 1970-01-01 of a date (polars' physical Date value)."""
    return (day - dt.date(1970, 1, 1)).days


def _part(frame: pl.DataFrame, seed: int) -> pl.Series:
    share = (frame[S.APPOINTMENT_ID].hash(seed) % 1000).cast(pl.Float64) / 1000
    return pl.select(pl.when(share < VAL_SHARE).then(1).when(share < VAL_SHARE + TEST_SHARE).then(2)
                     .otherwise(0).cast(pl.Int8)).to_series()


def build_store(path: str | Path, folder: Path, dtype: str = "float32", seed: int = 0,
                block_rows: int = BLOCK_ROWS, read_bytes: int = READ_BYTES, buckets: int | None = None,
                schema: Schema | None = None) -> tuple[FeaturePipeline, dict[str, ChunkStore]]:
    """Out-of-core features of ``path`` in ``folder``: the fitted pipeline and a store per part.

    One parse of the text (:func:`parse_once`); the patient history out of core
    (:class:`PatientHistory`, ``buckets`` as there); raw features per typed block, saved, while the
    pipeline learns from their training rows; then each block encoded. An export read through
    ``schema`` gets the features its first block shows (:func:`~noshow.data.features.spec_of`).
    """
    history = PatientHistory(folder)
    typed = parse_once(path, folder, history, block_rows, read_bytes, schema=schema)
    spec = spec_of(pl.read_parquet(typed[0]), schema) if typed else spec_of(pl.DataFrame(), None)
    blocks: list[Path] = []

    def training_rows():
        for i, past in enumerate(history.blocks(buckets=buckets)):
            frame = pl.read_parquet(typed[i])
            typed[i].unlink()
            raw = (raw_features(frame, past=history_frame(past), spec=spec)
                   .with_columns(frame[S.TARGET], _part(frame, seed).alias(PART)))
            blocks.append(folder / f"raw_{i:05d}.parquet")
            raw.write_parquet(blocks[-1], compression="lz4")
            yield raw.filter(pl.col(PART) == 0)

    pipeline = FeaturePipeline(spec=spec).fit_chunks(training_rows())
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
