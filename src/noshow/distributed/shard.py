"""Which rows a process trains on: whole patients, by a hash of ``PatientId``.

Every history feature depends only on the patient's own appointments, so a process that holds all
of a patient's rows builds those features exactly as one process reading the whole file would: no
shuffle of rows between processes is ever needed.

A process reads its shard from either
- the CSV itself, streamed with Arrow's incremental reader (:func:`noshow.data.stream.typed_batches`),
  keeping its own patients: it never holds more than its shard and one block, but every process
  parses the whole text; or
- a partition folder written once by ``noshow partition`` (:func:`write_partition`): K Parquet
  files of typed rows, part k holding the patients whose hash is k mod K. With P processes dividing
  K, process r reads exactly the parts k = r mod P, which hold its patients and no others.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from noshow.data import schema as S
from noshow.errors import NoshowError

PARTITION_SEED = 20160429  # polars' hash seed for the patient partition (any fixed value)
ROW = "_row"  # a row's position in the CSV, kept in the parts so that a shard reads back in file order
MANIFEST = "partition.json"  # marks a partition folder: source file, its SHA-256, parts, rows


def owner(frame: pl.DataFrame, size: int) -> pl.Series:
    """The part (0..size-1) of each row of a typed frame: its patient's hash mod ``size``. For
    ``size`` = P dividing K, owner(·, P) = owner(·, K) mod P: process r owns parts r, r+P, ..."""
    return (frame[S.PATIENT_KEY].hash(PARTITION_SEED) % size).cast(pl.Int64)


def part_name(k: int, parts: int) -> str:
    return f"part-{k:05d}-of-{parts:05d}.parquet"


def write_partition(path: str | Path, parts: int, out: str | Path) -> dict:
    """Parse ``path`` once, block by block, and write its typed rows as ``parts`` Parquet files by
    patient into the folder ``out`` (replaced whole, atomically). Returns the manifest."""
    import pyarrow.parquet as pq

    from noshow.data.loader import file_sha256
    from noshow.data.stream import typed_batches
    from noshow.files import atomic_folder

    with atomic_folder(out, MANIFEST) as tmp:
        writers, rows, offset = {}, [0] * parts, 0
        try:
            for batch in typed_batches(path):
                keyed = batch.with_row_index(ROW, offset).with_columns(owner(batch, parts).alias("_k"))
                offset += batch.height
                for (k,), rows_k in keyed.partition_by(
                        "_k", as_dict=True, include_key=False).items():
                    table = rows_k.to_arrow()
                    if k not in writers:
                        writers[k] = pq.ParquetWriter(tmp / part_name(k, parts), table.schema, compression="lz4")
                    writers[k].write_table(table)
                    rows[k] += rows_k.height
        finally:
            for writer in writers.values():
                writer.close()
        manifest = {"source": str(path), "sha256": file_sha256(path), "parts": parts, "rows": rows,
                    "partition_seed": PARTITION_SEED}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise NoshowError(f"{folder}: not a partition folder written by noshow partition ({exc})") from None


def read_shard(path: str | Path, rank: int, size: int, positions: bool = False) -> pl.DataFrame:
    """The typed appointments of the patients process ``rank`` of ``size`` owns: from a CSV in file
    order, or from a partition folder part by part. ``positions``: keep each row's position in the
    CSV (from 0) in a first column :data:`ROW`."""
    path = Path(path)
    if path.is_dir():
        manifest = read_manifest(path)
        if manifest["parts"] % size:
            raise NoshowError(f"{path}: {manifest['parts']} parts cannot be shared by {size} processes; "
                              f"use a number of processes that divides {manifest['parts']}")
        files = [path / part_name(k, manifest["parts"]) for k in range(rank, manifest["parts"], size)]
        frames = [pl.read_parquet(f) for f in files if f.exists()]  # a part no patient hashed to is absent
        if not frames:
            raise NoshowError(f"{path}: no rows for process {rank} of {size}")
        # In file order, as from the CSV: the same rows in the same order train the same network.
        shard = pl.concat(frames, rechunk=True).sort(ROW)
        return shard.with_columns(pl.col(ROW).cast(pl.Int64)) if positions else shard.drop(ROW)
    from noshow.data.stream import typed_batches

    blocks, offset = [], 0
    for batch in typed_batches(path):
        mine = owner(batch, size) == rank
        if positions:
            batch = batch.with_row_index(ROW, offset).with_columns(pl.col(ROW).cast(pl.Int64))
        offset += batch.height
        blocks.append(batch.filter(mine))
    return pl.concat(blocks, rechunk=True)


def source_record(path: str | Path) -> dict:
    """The model file's record of the data: the CSV, or the CSV a partition folder was made from."""
    from noshow.data.loader import file_sha256

    path = Path(path)
    if path.is_dir():
        manifest = read_manifest(path)
        return {"source": manifest["source"], "sha256": manifest["sha256"], "partition": str(path)}
    return {"source": str(path), "sha256": file_sha256(path)}
