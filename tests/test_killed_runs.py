"""Runs killed at any moment, and two runs writing one path at once: an output is the previous
complete one, a new complete one, or absent; never a partial file or a mix of two runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from conftest import run_main
from noshow.model import TrainedModel

KILL_SECONDS = np.random.default_rng(2016).uniform(0.2, 6.0, size=4).round(2).tolist()
SMALL = ("--hidden", "16", "--members", "1", "--quiet")


def _start(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "NOSHOW_DATA"}
    return subprocess.Popen([sys.executable, "-m", "noshow", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_after(process: subprocess.Popen, seconds: float) -> None:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def model(small_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    assert run_main("train", "--data", str(small_csv), "--out", str(path), "--epochs", "2", *SMALL).returncode == 0
    return path


@pytest.mark.parametrize("seconds", KILL_SECONDS)
def test_killed_train_leaves_the_previous_model_or_a_complete_new_one(seconds, model, small_csv, tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(model.read_bytes())
    _kill_after(_start("train", "--data", str(small_csv), "--out", str(out), "--epochs", "120", "--patience", "0", "--seed", "1",
                       *SMALL),
                seconds)
    loaded = TrainedModel.load(out)  # refuses any partial or corrupted file
    assert out.read_bytes() == model.read_bytes() or loaded.config.seed == 1


@pytest.mark.parametrize("seconds", KILL_SECONDS)
def test_killed_predict_leaves_no_scores_or_complete_ones(seconds, model, small_csv, tmp_path):
    out = tmp_path / "scores.csv"
    _kill_after(_start("predict", "--model", str(model), "--data", str(small_csv), "--out", str(out),
                       "--html", str(tmp_path / "calls.html")), seconds)
    if out.exists():
        assert pl.read_csv(out).height == pl.read_csv(small_csv).height
    # A kill can strand a hidden temporary file (".scores.csv.XXXX.csv"), never a visible partial one.
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} <= {"scores.csv", "calls.html"}


def test_killed_compare_leaves_the_previous_report_whole(small_csv, tmp_path):
    out = tmp_path / "report"
    assert run_main("compare", "--data", str(small_csv), "--out", str(out), "--epochs", "2", *SMALL).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for seconds in KILL_SECONDS[:2]:
        _kill_after(_start("compare", "--data", str(small_csv), "--out", str(out), "--epochs", "2", "--seed", "1",
                           *SMALL), seconds)
        after = {p.name: p.read_bytes() for p in out.iterdir()}
        if after != before:  # the run finished: a whole new report, none of the old files left over
            assert set(after) == set(before)
            assert json.loads(after["metrics.json"])["config"]["seed"] == 1
            before = after


def test_two_predicts_writing_one_path_end_with_one_complete_file(model, small_csv, tmp_path):
    out = tmp_path / "scores.csv"
    expected = {}
    for k in ("5", "50"):
        alone = tmp_path / f"alone{k}.csv"
        assert run_main("predict", "--model", str(model), "--data", str(small_csv), "--out", str(alone),
                        "--calls-per-day", k, "--quiet").returncode == 0
        expected[k] = alone.read_bytes()
    runs = [_start("predict", "--model", str(model), "--data", str(small_csv), "--out", str(out),
                   "--calls-per-day", k) for k in expected]
    assert [r.wait(timeout=120) for r in runs] == [0, 0]
    assert out.read_bytes() in expected.values()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone5.csv", "alone50.csv", "scores.csv"]
