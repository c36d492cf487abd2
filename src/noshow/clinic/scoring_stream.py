"""``noshow predict`` for files larger than memory: whole appointment days at a time, in bounded memory.

1. The scored file is parsed once, block by block (:func:`noshow.data.stream.parse_once`); its
   blocks are saved as Parquet, one file per appointment day and block, and 25 bytes per row are
   kept for the patient history. The ``--history`` file is parsed the same way without being saved,
   leaving out its rows that are scored appointments (they count once, as in memory).
2. The patient history is computed over both files as in memory (history rows first, then the
   scored rows; :func:`noshow.data.features.raw_features` with ``history`` does the same).
3. Days are scored in date order, several at a time up to :data:`BLOCK_ROWS` rows (a day is never
   split), each group by :func:`noshow.clinic.scoring.score` with its rows' history handed in, so
   per-day policies (ranks, calls per day) see whole days. Each group's table is appended to the
   output.

Memory: the history arrays (about 80 bytes per row at their peak, both files together) and one
group of days. Output rows come in day order, each day in file order.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

from noshow.clinic import scoring
from noshow.data import schema as S
from noshow.data.loader import Appointments
from noshow.data.stream import BLOCK_ROWS, ROW, _history_of, parse_once
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


def predict_file(model, data_path: str | Path, out: str | Path, history_path: str | Path | None = None,
                 policy=None, backend: str = "numpy", device: str = "cpu", block_rows: int = BLOCK_ROWS) -> dict:
    """Score every appointment of ``data_path`` with ``model`` (a :class:`~noshow.model.TrainedModel`)
    under ``policy`` and write :func:`noshow.clinic.scoring.score`'s table to ``out`` as CSV
    (atomically). Returns :func:`noshow.clinic.scoring.summary` of all rows."""
    with tempfile.TemporaryDirectory(prefix="noshow-predict-") as tmp:
        files, compact = parse_once(data_path, Path(tmp), by_day=True, name="day")
        scored_ids = np.concatenate([pl.read_parquet(f, columns=[S.APPOINTMENT_ID])[S.APPOINTMENT_ID].to_numpy()
                                     for f in files]) if files else np.zeros(0, np.int64)
        earlier = parse_once(history_path, None, skip_ids=scored_ids)[1] if history_path else []
        del scored_ids
        n_earlier = sum(len(part[S.PATIENT_KEY]) for part in earlier)
        parts = earlier + compact
        del earlier, compact  # _history_of empties the list it is given: the compact columns go with it
        history = _history_of(parts).slice(n_earlier)
        totals: dict = {}
        with atomic_path(out) as tmp_out, open(tmp_out, "wb") as handle:
            for group in _day_groups(files, block_rows):
                frame = pl.concat([pl.read_parquet(p) for p in group])
                past = history[frame[ROW].to_numpy()]
                days = Appointments(frame.drop(ROW), source=str(data_path), sha256="")
                table = scoring.score(model, days, None, policy, backend, device, past=past)
                table.write_csv(handle, include_header=not totals)
                _add(totals, scoring.summary(table, policy, model.threshold))
                for path in group:
                    path.unlink()
            if not totals:
                handle.write((",".join(scoring.SCORE_COLUMNS) + "\n").encode())
                totals = {"rows": 0, "days": 0, "flagged": 0, "rule": "", "policy": ""}
    return totals


def _add(totals: dict, part: dict) -> None:
    """Sum the counts (and net benefit) of a group's summary into ``totals``: groups hold whole,
    distinct days, so every count adds up."""
    for key, value in part.items():
        totals[key] = totals[key] + value if key in totals and isinstance(value, (int, float)) else value
