"""Fuzzing: generated broken files, broken model files and odd flags never crash noshow; each
either works or gets the one-line user error with nothing written (see ``fuzz_cases.py``).

Bounded here (a few hundred cases, derandomised so CI is repeatable); ``bench/fuzz`` runs many more.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noshow.model import TrainedModel

from conftest import REAL_DATA, run_main
from fuzz_cases import flag_argv, mutated_csv, mutated_model, run_and_check

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROWS = 150


def _base_rows(small_csv) -> bytes:
    """The first rows of the real file when it is here ("mutations of real rows"), else synthetic."""
    source = REAL_DATA if REAL_DATA and os.path.exists(REAL_DATA) else small_csv
    raw = open(source, "rb").read()
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return b"\n".join(text.split(b"\n")[:ROWS + 1]) + b"\n"


class Work(tuple):
    """(folder, base CSV bytes, model path); printed short when Hypothesis reports a case."""

    def __repr__(self) -> str:
        return f"Work({self[0]})"


@pytest.fixture(scope="module")
def work(small_csv, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    base = _base_rows(small_csv)
    (folder / "base.csv").write_bytes(base)
    model = folder / "model.npz"
    assert run_main("train", "--data", str(small_csv), "--out", str(model), "--epochs", "1", "--hidden", "8",
                    "--members", "1", "--quiet").returncode == 0
    return Work((folder, base, model))


def _write(folder, name: str, raw: bytes):
    path = folder / name
    path.write_bytes(raw)
    return path


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_check_on_mutated_files_succeeds_or_says_one_line(work, data):
    folder, base, _ = work
    path = _write(folder, "case.csv", data.draw(mutated_csv(base)))
    run_and_check(["check", "--data", str(path)], [])


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_predict_on_mutated_files_succeeds_or_writes_nothing(work, data):
    folder, base, model = work
    path = _write(folder, "case.csv", data.draw(mutated_csv(base)))
    out, html = folder / "scores.csv", folder / "calls.html"
    run_and_check(["predict", "--model", str(model), "--data", str(path), "--out", str(out), "--html", str(html),
                   "--quiet"], [out, html])


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_train_on_mutated_files_succeeds_or_writes_nothing(work, data):
    folder, base, _ = work
    path = _write(folder, "case.csv", data.draw(mutated_csv(base)))
    out = folder / "trained.npz"
    run_and_check(["train", "--data", str(path), "--out", str(out), "--epochs", "1", "--hidden", "8", "--members",
                   "1", "--quiet"], [out, folder / "trained.card.md"])


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_broken_model_files_are_refused_with_one_line(work, data):
    folder, base, model = work
    broken = _write(folder, "broken.npz", data.draw(mutated_model(model)))
    out = folder / "scores.csv"
    outcome = run_and_check(["predict", "--model", str(broken), "--data", str(folder / "base.csv"), "--out",
                             str(out), "--quiet"], [out])
    if outcome.code == 0:  # damage outside every checked part, or a re-signed edit: a sound model
        accepted = TrainedModel.load(broken)
        assert np.isfinite(pl.read_csv(out)["no_show_probability"].to_numpy()).all()
        assert set(accepted.parameters) == set(TrainedModel.load(model).parameters)


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_odd_flags_succeed_or_say_one_line(work, data):
    folder, base, model = work
    out = folder / "flagged.out"
    command = data.draw(st.sampled_from(["check", "train", "predict", "synth"]))
    fixed = {"check": ["--data", str(folder / "base.csv")],
             "train": ["--data", str(folder / "base.csv"), "--out", str(out), "--epochs", "1", "--hidden", "8",
                       "--members", "1", "--quiet"],
             "predict": ["--model", str(model), "--data", str(folder / "base.csv"), "--out", str(out), "--quiet"],
             "synth": ["--rows", "200", "--out", str(out)]}[command]
    argv = data.draw(flag_argv(command, fixed))
    if command == "train":  # whatever the flags said, keep a valid run small
        argv += ["--epochs", "1", "--members", "1", "--hidden", "8"]
    run_and_check(argv, [out])
