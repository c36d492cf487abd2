"""Benchmarks at scale on synthetic data (``noshow bench --scale``): writing the data, streamed
training and out-of-core scoring, each in a fresh process so that its peak memory is its own.

- :func:`_synth_job`: ``noshow synth`` (:func:`noshow.data.synth.write_synthetic`, block by block).
- :func:`_train_job`: features out of core (:func:`noshow.data.stream.build_store`) and one epoch
  of the NumPy twin from the chunk store; then saves a model of the default architecture (untrained
  weights score at the same speed) for the scoring job.
- :func:`_predict_job`: ``noshow predict`` out of core (:func:`noshow.clinic.scoring_stream.predict_file`),
  CSV in, the call list's table out (calibrated risk, rank in the day, flag, reasons), once with
  reasons for every row and once for the flagged rows only (``--reasons flagged``), with the
  seconds of each stage.

``python -m noshow.benchmarks.scale JOB ARGS... RESULT.json`` runs one job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _synth_job(rows: int, seed: int, csv: str) -> dict:
    """Write ``rows`` synthetic appointments to ``csv``; time and memory."""
    from noshow.data.synth import write_synthetic
    from noshow.training.worker import peak_rss_mb

    started = time.perf_counter()
    write_synthetic(csv, rows, seed)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def _train_job(csv: str, threads: int, epochs: int, model_path: str) -> dict:
    """Build features out of core and train the NumPy twin streamed; time and memory."""
    from noshow.clinic.reasons import REFERENCE_KEY
    from noshow.data.stream import build_store
    from noshow.model import TrainedModel
    from noshow.nn.config import MLPConfig, initial_parameters, join_members, member_config
    from noshow.training import fit, make_backend
    from noshow.training.train import streamed_reference
    from noshow.training.worker import peak_rss_mb

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noshow-stream-") as tmp:
        pipeline, stores = build_store(csv, Path(tmp))
        features_seconds = time.perf_counter() - started
        config = MLPConfig(epochs=epochs, patience=0, members=1)
        backend = make_backend("numpy", stores["train"].width, config)
        result = fit(backend, stores["train"], None, config, stores["val"])
        n_train = len(stores["train"])
    seconds = time.perf_counter() - started
    default = MLPConfig()
    width = len(pipeline.feature_names)
    parameters = join_members([initial_parameters(width, member_config(default, k)) for k in range(default.members)])
    TrainedModel(default, parameters, pipeline, 0.5, {REFERENCE_KEY: streamed_reference(csv)}).save(model_path)
    return {"features_seconds": features_seconds, "train_seconds": result.train_seconds,
            "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "n_train": n_train,
            "epochs": epochs, "val_pr_auc": result.history[-1].val_pr_auc, "threads": threads}


PREDICT_REASONS = ("all", "flagged")  # the predict runs measured at each size, by their --reasons


def _predict_job(csv: str, threads: int, model_path: str, reasons: str = "all") -> dict:
    """Score ``csv`` out of core with the model at ``model_path``, reasons for ``reasons``' rows;
    time, memory and each stage's seconds (CSV in, CSV out)."""
    from noshow.clinic import scoring
    from noshow.clinic.scoring_stream import predict_file
    from noshow.model import TrainedModel
    from noshow.training.worker import peak_rss_mb

    started = time.perf_counter()
    stages: dict = {}
    with scoring.timed(stages, "model"):
        model = TrainedModel.load(model_path)
    with tempfile.TemporaryDirectory(prefix="noshow-scores-") as tmp:
        done = predict_file(model, csv, Path(tmp) / "scores.csv", reasons=reasons, stages=stages)
    return {"reasons": reasons, "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(),
            "scored": done["rows"], "flagged": done["flagged"], "members": model.config.members, "threads": threads,
            "stages": stages}


def _run_job(job: str, args: list, threads: int, folder: Path) -> dict:
    from noshow.training.worker import THREAD_VARIABLES

    env = {**os.environ, **{name: str(threads) for name in (*THREAD_VARIABLES, "POLARS_MAX_THREADS")}}
    out = folder / f"{job}.json"
    # The host is shared: the 1-minute load average before and after says what else was running.
    load_before = os.getloadavg()[0]
    subprocess.run([sys.executable, "-m", "noshow.benchmarks.scale", job, *map(str, args), str(out)],
                   check=True, env=env)
    return {**json.loads(out.read_text()), "load_before": load_before, "load_after": os.getloadavg()[0]}


def scale_runs(rows: int, threads: int, epochs: int = 1) -> dict[str, list[dict]]:
    """Write ``rows`` synthetic appointments, then measure streamed training and scoring of them,
    each in a fresh process. Returns the records for ``bench.json``'s lists, by list name:
    ``synth`` (writing the CSV), ``scaling`` (features and ``epochs`` streamed epochs), ``predict``
    (scoring it, CSV in, scores out, once per :data:`PREDICT_REASONS`)."""
    with tempfile.TemporaryDirectory(prefix="noshow-scale-") as tmp:
        folder = Path(tmp)
        csv = folder / "synthetic.csv"
        written = _run_job("synth", [rows, rows % 997, csv], threads, folder)
        model = folder / "model.npz"
        trained = _run_job("train", [csv, threads, epochs, model], threads, folder)
        scored = [_run_job("predict", [csv, threads, model, reasons], threads, folder) for reasons in PREDICT_REASONS]
    return {"synth": [{"rows": rows, **written}], "scaling": [{"rows": rows, **trained}],
            "predict": [{"rows": rows, **run} for run in scored]}


if __name__ == "__main__":
    _job, *_args, _out = sys.argv[1:]
    if _job == "synth":
        _result = _synth_job(int(_args[0]), int(_args[1]), _args[2])
    elif _job == "train":
        _result = _train_job(_args[0], int(_args[1]), int(_args[2]), _args[3])
    else:
        _result = _predict_job(_args[0], int(_args[1]), _args[2], _args[3])
    Path(_out).write_text(json.dumps(_result))
