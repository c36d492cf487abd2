"""``noshow db export``: every table of the store as one Parquet file, for backup and analysis."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import sqlalchemy as sa

from noshow.files import atomic_folder
from noshow.store import tables as T

MARKER = "models.parquet"  # the folder is an earlier export when it holds this (atomic_folder's rule)


def table_frame(connection, table: sa.Table) -> pl.DataFrame:
    """One table as a frame, its columns typed from the schema (an empty table keeps its columns)."""
    rows = connection.execute(sa.select(table)).mappings().all()
    frame = pl.DataFrame([dict(r) for r in rows], infer_schema_length=None) if rows else \
        pl.DataFrame(schema={c.name: pl.String for c in table.columns})
    json_columns = [c.name for c in table.columns if isinstance(c.type, sa.JSON)]
    if rows and json_columns:  # the card's facts: kept as JSON text, one schema for every model
        import json

        frame = frame.with_columns(pl.Series(name, [json.dumps(r[name], sort_keys=True) for r in rows]) for name in json_columns)
    return frame


def export_tables(engine: sa.Engine, out: str | Path) -> dict[str, int]:
    """Write ``<table>.parquet`` for every table into ``out`` (replaced whole, atomically), all read
    in one transaction so that the files agree with each other; rows per table."""
    written = {}
    with atomic_folder(Path(out), MARKER) as tmp, engine.connect() as connection:
        for table in T.TABLES:
            frame = table_frame(connection, table)
            frame.write_parquet(tmp / f"{table.name}.parquet")
            written[table.name] = frame.height
    return written
