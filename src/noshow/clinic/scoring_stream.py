"""``noshow predict`` for files larger than memory: whole appointment days at a time, in bounded memory.

1. The scored file is parsed once, block by block (:func:`noshow.data.stream.parse_once`); its
   blocks are saved as Parquet, one file per appointment day and block, and the patient history's
   inputs are spilled to disk (:class:`noshow.data.stream.PatientHistory`). The ``--history`` file
   is parsed the same way without being saved, leaving out its rows that are scored appointments
   (they count once, as in memory).
2. The patient history is computed over both files' rows out of core, one bucket of patients at a
   time; it is the in-memory history (:func:`noshow.data.features.raw_features` with ``history``),
   which depends on each patient's rows, not on their order. Each day file's rows' history is
   saved beside it.
3. Days are scored in date order, several at a time up to :data:`BLOCK_ROWS` rows (a day is never
   split), each group by :func:`noshow.clinic.scoring.score` with its rows' history handed in, so
   per-day policies (ranks, calls per day) see whole days. Each group's table is appended to the
   output.

Memory: one block, one bucket of patients' history and one group of days; and, while the history
file is parsed, the scored appointments' IDs (8 bytes per scored row). Output rows come in day
order, each day in file order.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

from noshow.allocator import one_arena
from noshow.clinic import scoring
from noshow.data import schema as S
from noshow.data.features import history_frame
from noshow.data.loader import Appointments
from noshow.data.stream import BLOCK_ROWS, ROW, PatientHistory, parse_once
from noshow.files import atomic_path


def _day_groups(files: list[Path], block_rows: int) -> list[list[Path]]:
    """Files of whole days, in date order, grouped up to ``block_rows`` rows (a bigger day alone)."""
    by_day: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_day[path.stem.split("_")[1]].append(path)
    groups, current, rows = [], [], 0
    for day in sorted(by_day):
        day_rows = sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in by_day[day])
        if current and rows + day_rows > block_rows:
            groups.append(current)
            current, rows = [], 0
        current += by_day[day]
        rows += day_rows
    return groups + ([current] if current else [])


def _past_file(day_file: Path) -> Path:
    return day_file.with_suffix(".past.npy")


def _save_past(files: list[Path], blocks) -> None:
    """Beside each day file of the scored file, its rows' history as ``.past.npy`` ((8, rows) int32,
    :meth:`~noshow.data.stream.PatientHistory.blocks`' columns), from ``blocks``, the scored
    file's blocks' history in block order: each block's history is read once, in bounded memory,
    and a group of days then reads only its own rows'. ``files`` come as :func:`parse_once` saves
    them, block after block, each holding rows of one block."""
    blocks = iter(blocks)
    past, start, end = None, 0, 0  # the block in hand and its rows' file positions [start, end)
    for path in files:
        rows = pl.read_parquet(path, columns=[ROW])[ROW].to_numpy()
        while past is None or rows[0] >= end:  # this day file's rows lie in a later block
            past = next(blocks)
            start, end = end, end + past.shape[1]
        np.save(_past_file(path), past[:, rows - start], allow_pickle=False)
    for _ in blocks:  # blocks after the last day file's (empty ones): read, so their files go
        pass


def predict_file(model, data_path: str | Path, out: str | Path, history_path: str | Path | None = None,
                 policy=None, backend: str = "numpy", device: str = "cpu", block_rows: int = BLOCK_ROWS,
                 reasons: str = "all", stages: dict | None = None) -> dict:
    """Score every appointment of ``data_path`` with ``model`` (a :class:`~noshow.model.TrainedModel`)
    under ``policy`` and write :func:`noshow.clinic.scoring.score`'s table to ``out`` as CSV
    (atomically), with ``reasons`` for the rows :data:`~noshow.clinic.scoring.REASON_ROWS` names.
    Returns :func:`noshow.clinic.scoring.summary` of all rows. ``stages``, if given, gets the
    seconds of ``parse`` (the files read once, their days saved), ``history`` (the patient history
    out of core), ``read days`` (each group of days read back), ``writing`` (the CSV) and those of
    :func:`noshow.clinic.scoring.score`."""
    timed = scoring.timed
    one_arena()  # before the parse's threads allocate: the reasons' threads keep no arenas of their own
    with tempfile.TemporaryDirectory(prefix="noshow-predict-") as tmp:
        history = PatientHistory(Path(tmp))
        with timed(stages, "parse"):
            files = parse_once(data_path, Path(tmp), history, by_day=True, name="day", schema=model.schema)
            scored_blocks = len(history.sizes)
            scored_ids = np.concatenate([pl.read_parquet(f, columns=[S.APPOINTMENT_ID])[S.APPOINTMENT_ID].to_numpy()
                                         for f in files]) if files else np.zeros(0, np.int64)
            if history_path:
                parse_once(history_path, None, history, skip_ids=scored_ids, schema=model.schema)
            del scored_ids
        with timed(stages, "history"):
            _save_past(files, history.blocks(count=scored_blocks))
        totals: dict = {}
        with atomic_path(out) as tmp_out, open(tmp_out, "wb") as handle:
            for group in _day_groups(files, block_rows):
                with timed(stages, "read days"):
                    frame = pl.concat([pl.read_parquet(p) for p in group])
                    past = np.concatenate([np.load(_past_file(p), allow_pickle=False) for p in group], axis=1)
                    past = history_frame(past)
                days = Appointments(frame.drop(ROW), source=str(data_path), sha256="")
                table = scoring.score(model, days, None, policy, backend, device, past=past, reasons=reasons,
                                      stages=stages)
                with timed(stages, "writing"):
                    table.write_csv(handle, include_header=not totals)
                _add(totals, scoring.summary(table, policy, model.threshold))
                for path in group:
                    path.unlink()
                    _past_file(path).unlink()
            if not totals:
                handle.write((",".join(scoring.SCORE_COLUMNS) + "\n").encode())
                totals = {"rows": 0, "days": 0, "flagged": 0, "rule": "", "policy": ""}
    return totals


def _add(totals: dict, part: dict) -> None:
    """Sum the counts (and net benefit) of a group's summary into ``totals``: groups hold whole,
    distinct days, so every count adds up."""
    for key, value in part.items():
        totals[key] = totals[key] + value if key in totals and isinstance(value, (int, float)) else value
