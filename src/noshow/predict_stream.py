"""``noshow predict`` for files larger than memory: whole appointment days at a time, in bounded memory.

1. The scored file, and the ``--history`` file if any, are parsed once, block by block
   (:func:`noshow.data.stream.parse_once`); the scored file's blocks are saved as Parquet, one
   file per appointment day and block, and both files leave 25 bytes per row for the history.
2. The patient history is computed over both files as in memory: :func:`raw_features` with
   ``history`` concatenates the history rows before the scored rows and keeps the scored rows'
   part, and so does this module.
3. Days are scored in date order, several at a time up to :data:`BLOCK_ROWS` rows (a day is never
   split), and each group's scores are appended to the output. A group of whole days is what a
   per-day policy (ranks, flags within a day) needs.

Memory: the history arrays (about 80 bytes per row at their peak, for both files together) and one
group of days. Output rows come in day order, each day in file order; ``AppointmentID`` names them.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.features import raw_features
from noshow.data.stream import BLOCK_ROWS, ROW, _history_of, parse_once
from noshow.evaluation.metrics import sigmoid64
from noshow.files import atomic_path
from noshow.training import make_model

PROBABILITY, PREDICTED = "no_show_probability", "predicted_no_show"  # predict's output columns


def scores_frame(ids: pl.Series, probability: np.ndarray, threshold: float) -> pl.DataFrame:
    """predict's output: ``AppointmentID``, the probability (6 decimals) and the 0/1 flag at
    ``threshold``."""
    return pl.DataFrame({S.APPOINTMENT_ID: ids, PROBABILITY: np.round(probability, 6),
                         PREDICTED: (probability >= threshold).astype(np.int8)})


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
                 backend: str = "numpy", device: str = "cpu", block_rows: int = BLOCK_ROWS) -> dict:
    """Score every appointment of ``data_path`` with ``model`` (a :class:`~noshow.model.TrainedModel`)
    and write predict's CSV to ``out`` (atomically). Returns ``{"rows", "flagged"}``."""
    network = make_model(backend, model.n_inputs, model.config, model.parameters, device)
    with tempfile.TemporaryDirectory(prefix="noshow-predict-") as tmp:
        folder = Path(tmp)
        earlier = parse_once(history_path, None)[1] if history_path else []
        n_earlier = sum(len(part[S.PATIENT_KEY]) for part in earlier)
        files, compact = parse_once(data_path, folder, by_day=True, name="day")
        history = _history_of(earlier + compact).slice(n_earlier)
        rows = flagged = 0
        with atomic_path(out) as tmp_out, open(tmp_out, "wb") as handle:
            for group in _day_groups(files, block_rows):
                frame = pl.concat([pl.read_parquet(p) for p in group])
                past = history[frame[ROW].to_numpy()]
                features = model.pipeline.encode(raw_features(frame, past=past), model.config.np_dtype)
                scores = scores_frame(frame[S.APPOINTMENT_ID], sigmoid64(network.predict_logits(features)),
                                      model.threshold)
                scores.write_csv(handle, include_header=rows == 0)
                rows += scores.height
                flagged += int(scores[PREDICTED].sum())
                for path in group:
                    path.unlink()
            if rows == 0:
                scores_frame(pl.Series(S.APPOINTMENT_ID, [], pl.Int64), np.zeros(0), model.threshold).write_csv(handle)
    return {"rows": rows, "flagged": flagged}
