"""Which rows a process trains on: whole patients, by a hash of ``PatientId``.

Every history feature depends only on the patient's own appointments, so a process that holds all
of a patient's rows builds those features exactly as one process reading the whole file would: no
shuffle of rows between processes is ever needed. Each process streams the CSV with Arrow's
incremental reader (:func:`noshow.data.stream.typed_batches`, the out-of-core path's reader) and
keeps its own patients, so it never holds more than its shard and one block.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from noshow.data import schema as S

PARTITION_SEED = 20160429  # polars' hash seed for the patient partition (any fixed value)


def owner(frame: pl.DataFrame, size: int) -> pl.Series:
    """The process (0..size-1) that owns each row of a typed frame: its patient's hash mod size."""
    return (frame[S.PATIENT_KEY].hash(PARTITION_SEED) % size).cast(pl.Int64)


def read_shard(path: str | Path, rank: int, size: int) -> pl.DataFrame:
    """The typed appointments of the patients process ``rank`` of ``size`` owns, in file order."""
    from noshow.data.stream import typed_batches

    blocks = [batch.filter(owner(batch, size) == rank) for batch in typed_batches(path)]
    return pl.concat(blocks, rechunk=True)
