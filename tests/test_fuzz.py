"""Fuzzing: generated broken files, broken model files and odd flags never crash noshow; each
either works or gets the one-line user error with nothing written (see ``fuzz_cases.py``).

Bounded here (a few hundred cases, derandomised so CI is repeatable); ``bench/fuzz`` runs many more.
"""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REAL_DATA, run_main
from fuzz_cases import flag_argv, mutated_csv, mutated_model, run_and_check
from noshow.model import TrainedModel

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


# Regression tests: each failure the fuzzing found, by name.

def test_stray_carriage_return_inside_a_field_is_a_user_error(work):
    folder, base, _ = work
    lines = base.split(b"\n")
    lines[1] = lines[1].replace(b",", b',"quoted",', 1)[:40] + b"\rX" + lines[1][40:]
    path = _write(folder, "cr.csv", b"\n".join(lines))
    outcome = run_and_check(["check", "--data", str(path)], [])
    assert outcome.code == 2


def test_damaged_npy_header_in_a_model_file_is_a_user_error(work):
    folder, _, model = work
    raw = model.read_bytes()
    at = raw.index(b"'shape': (") + len(b"'shape': (")
    broken = _write(folder, "header.npz", raw[:at] + b"(" + raw[at + 1:])
    outcome = run_and_check(["predict", "--model", str(broken), "--data", str(folder / "base.csv"), "--out",
                             str(folder / "s.csv")], [folder / "s.csv"])
    assert outcome.code == 2 and "not a readable model file" in outcome.stderr


def _edited(model, folder, edit, resign: bool):
    from noshow.model import METADATA_DIGEST_KEY, METADATA_KEY, metadata_digest

    with np.load(model, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays[METADATA_KEY].tobytes())
    edit(meta)
    if resign:
        meta[METADATA_DIGEST_KEY] = metadata_digest(meta)
    arrays[METADATA_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path = folder / "edited.npz"
    np.savez(path, **arrays)
    return path


def test_edited_threshold_in_a_model_file_is_refused(work):
    folder, _, model = work
    path = _edited(model, folder, lambda meta: meta.update(threshold=0.9), resign=False)
    outcome = run_and_check(["predict", "--model", str(path), "--data", str(folder / "base.csv"), "--out",
                             str(folder / "s.csv")], [folder / "s.csv"])
    assert outcome.code == 2 and "metadata does not match its recorded SHA-256" in outcome.stderr


def test_model_config_that_is_not_an_object_is_a_user_error(work):
    folder, _, model = work
    path = _edited(model, folder, lambda meta: meta.update(config=None), resign=True)
    outcome = run_and_check(["predict", "--model", str(path), "--data", str(folder / "base.csv"), "--out",
                             str(folder / "s.csv")], [folder / "s.csv"])
    assert outcome.code == 2 and "corrupt model metadata" in outcome.stderr


def test_year_zero_in_a_date_is_a_user_error_naming_the_line(work):
    folder, base, _ = work
    lines = base.decode().split("\n")
    fields = lines[3].split(",")
    fields[3] = "0000-01-01T00:00:00Z"
    lines[3] = ",".join(fields)
    path = _write(folder, "year0.csv", "\n".join(lines).encode())
    outcome = run_and_check(["check", "--data", str(path)], [])
    assert outcome.code == 2 and "column ScheduledDay, line 4: 0 is outside 1900..2100" in outcome.stderr


@pytest.mark.parametrize("flag,value", [("--seed", "-1"), ("--lr", "nan"), ("--weight-decay", "inf")])
def test_impossible_training_settings_are_one_line_errors(work, flag, value):
    folder, _, _ = work
    out = folder / "m.npz"
    outcome = run_and_check(["train", "--data", str(folder / "base.csv"), "--out", str(out), flag, value], [out])
    assert outcome.code == 2


def test_patient_id_spelling_a_billion_digits_is_a_user_error(work):
    folder, base, _ = work
    lines = base.decode().split("\n")
    lines[2] = "1E999999999" + lines[2][lines[2].index(","):]
    path = _write(folder, "bigid.csv", "\n".join(lines).encode())
    outcome = run_and_check(["check", "--data", str(path)], [])
    assert outcome.code == 2 and "column PatientId, line 3: '1E999999999' is not an ID" in outcome.stderr


def test_control_characters_in_a_column_name_stay_on_the_error_line(work):
    folder, base, _ = work
    path = _write(folder, "vt.csv", base.replace(b"PatientId", b"\x0bPatientId", 1))
    outcome = run_and_check(["check", "--data", str(path)], [])
    assert outcome.code == 2 and "\\x0b" in outcome.stderr


# A clinic's schema file and FHIR input: generated damage gets the one-line error too.

SCHEMA_WORDS = st.sampled_from(["columns", "outcome", "formats", "covariates", "audit", "appointment_id", "patient_id",
                                "booked_at", "appointment_date", "appointment_time", "outcome", "age", "birth_date",
                                "gender", "reminder_sent", "missed", "attended", "pending", "excluded", "flags",
                                "categorical", "numeric", "groups", "ApptID", "Status", "BookedAt", "HTN", "%d/%m/%Y"])


@st.composite
def mutated_schema(draw, base: str) -> str:
    """``base`` (a schema file's text) with 1-4 lines deleted, repeated, or replaced by generated ones."""
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "repeat", "replace", "section"]))
        if how == "delete":
            del lines[at]
        elif how == "repeat":
            lines.insert(at, lines[at])
        elif how == "section":
            lines[at] = f"[{draw(SCHEMA_WORDS)}]"
        else:
            value = draw(st.one_of(SCHEMA_WORDS.map(json.dumps), st.lists(SCHEMA_WORDS, max_size=3).map(json.dumps),
                                   st.integers().map(str), st.text(max_size=12).map(json.dumps), st.text(max_size=12)))
            lines[at] = f"{draw(SCHEMA_WORDS)} = {value}"
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def export(work):
    from exports import RENAMED_SCHEMA, write_fhir, write_renamed

    folder = work[0]
    return (write_renamed(folder / "base.csv", folder / "export.csv"), RENAMED_SCHEMA,
            write_fhir(folder / "base.csv", folder / "fhir"))


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_mutated_schema_files_succeed_or_say_one_line(work, export, data):
    folder = work[0]
    schema = folder / "case.toml"
    schema.write_text(data.draw(mutated_schema(export[1])), encoding="utf-8")
    out = folder / "schema-trained.npz"
    run_and_check(["train", "--data", str(export[0]), "--schema", str(schema), "--out", str(out), "--epochs", "1",
                   "--hidden", "8", "--members", "1", "--quiet"], [out, folder / "schema-trained.card.md"])


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=6)


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_mutated_fhir_lines_succeed_or_say_one_line(work, export, data):
    folder, fhir = work[0], export[2]
    case = folder / "fhir-case"
    case.mkdir(exist_ok=True)
    name = data.draw(st.sampled_from(["Appointment.ndjson", "Patient.ndjson"]))
    lines = (fhir / name).read_text().splitlines()
    at = data.draw(st.integers(0, len(lines) - 1))
    how = data.draw(st.sampled_from(["truncate", "drop_key", "set_key", "garbage"]))
    if how == "truncate":
        lines[at] = lines[at][:data.draw(st.integers(0, len(lines[at])))]
    elif how == "garbage":
        lines[at] = data.draw(st.text(max_size=40))
    else:
        resource = json.loads(lines[at])
        key = data.draw(st.sampled_from(sorted(resource)))
        if how == "drop_key":
            del resource[key]
        else:
            resource[key] = data.draw(JSON_VALUES)
        lines[at] = json.dumps(resource)
    for other in ("Appointment.ndjson", "Patient.ndjson"):
        text = "\n".join(lines) + "\n" if other == name else (fhir / other).read_text()
        (case / other).write_text(text, encoding="utf-8")
    run_and_check(["check", "--data", str(case)], [])
