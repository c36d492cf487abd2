"""A clinic's own export read through a schema file, and HL7 FHIR R4 input: the same model as the
Kaggle layout gives for the same appointments, and one-line errors for what does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import assert_user_error, run_main
from exports import RENAMED_SCHEMA, fhir_resources, renamed_frame, write_fhir, write_renamed, write_schema
from noshow.data import loader
from noshow.data import schema as S
from noshow.data.features import KAGGLE
from noshow.data.prepare import prepare
from noshow.data.schema_file import Schema, read_schema
from noshow.nn.config import MLPConfig
from noshow.training.train import train_model

TINY = MLPConfig(hidden=(16,), epochs=2, members=1, batch_size=256)
SUBSET_ROWS = 20_000  # rows of the real file in the equivalence tests (a prefix: whole minutes saved)


@pytest.fixture(scope="module")
def renamed(tmp_path_factory, small_csv) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("renamed")
    return write_renamed(small_csv, folder / "export.csv"), write_schema(RENAMED_SCHEMA, folder / "schema.toml")


def _real_prefix(real_data_path: Path, folder: Path) -> Path:
    text, _ = loader.read_text_frame(real_data_path)
    path = folder / "kaggle_prefix.csv"
    text.head(SUBSET_ROWS).write_csv(path)
    return path


def _probabilities(data: loader.Appointments, backend: str) -> np.ndarray:
    prepared = prepare(data, "time", 0, hold_out_test=False)
    model, _ = train_model(prepared, backend, TINY)
    return model.predict_proba(data, backend)


# --------------------------------------------------------------------------------------------------
# The same appointments in another layout give the same model


def test_kaggle_preset_pipeline_records_no_spec(small_data):
    pipeline = prepare(small_data).pipeline
    assert pipeline.spec == KAGGLE
    assert set(pipeline.to_dict()) == {"min_category_count", "numeric", "binary", "binned", "means", "stds",
                                       "vocabularies"}


def test_renamed_export_gives_the_kaggle_feature_matrix(small_data, renamed):
    export = loader.load(renamed[0], schema=read_schema(renamed[1]))
    a, b = prepare(small_data), prepare(export)
    assert np.array_equal(a.features.to_array(np.float32), b.features.to_array(np.float32))
    assert np.array_equal(a.y, b.y)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_renamed_export_trains_to_the_same_scores(small_data, renamed, backend):
    export = loader.load(renamed[0], schema=read_schema(renamed[1]))
    assert np.max(np.abs(_probabilities(small_data, backend) - _probabilities(export, backend))) <= 1e-6


@pytest.mark.realdata
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_real_file_renamed_trains_to_the_same_scores(real_data_path, tmp_path, backend):
    kaggle = _real_prefix(real_data_path, tmp_path)
    export = write_renamed(kaggle, tmp_path / "export.csv")
    schema = read_schema(write_schema(RENAMED_SCHEMA, tmp_path / "schema.toml"))
    original, through = loader.load(kaggle), loader.load(export, schema=schema)
    assert np.max(np.abs(_probabilities(original, backend) - _probabilities(through, backend))) <= 1e-6


def _fhir_twin_csv(kaggle: Path, out: Path) -> tuple[Path, Schema]:
    """The FHIR resources of :func:`fhir_resources` written as a plain CSV, with its schema."""
    appointments, patients = fhir_resources(kaggle)
    people = {p["id"]: p for p in patients}
    rows = [{"id": a["id"], "patient": a["participant"][0]["actor"]["reference"].split("/")[1],
             "created": a["created"], "start": a["start"], "status": a["status"],
             "kind": a["appointmentType"]["coding"][0]["code"]} for a in appointments]
    frame = pl.DataFrame(rows).with_columns(
        pl.col("patient").replace_strict({k: p["gender"] for k, p in people.items()}).alias("sex"),
        pl.col("patient").replace_strict({k: p["birthDate"] for k, p in people.items()}).alias("born"),
        pl.col("patient").replace_strict({k: p["address"][0]["district"] for k, p in people.items()}).alias("area"))
    frame.write_csv(out)
    schema = Schema.from_dict({
        "columns": {"appointment_id": "id", "patient_id": "patient", "booked_at": "created",
                    "appointment_date": "start", "outcome": "status", "gender": "sex", "birth_date": "born"},
        "outcome": {"missed": ["noshow"], "attended": ["fulfilled"]},
        "covariates": {"categorical": ["kind", "area"]}})
    return out, schema


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fhir_export_trains_to_the_scores_of_the_same_csv(small_csv, tmp_path, backend):
    from_fhir = loader.load(write_fhir(small_csv, tmp_path / "fhir"))
    csv, schema = _fhir_twin_csv(small_csv, tmp_path / "twin.csv")
    from_csv = loader.load(csv, schema=schema)
    assert from_fhir.frame.height == from_csv.frame.height == 3000
    assert np.max(np.abs(_probabilities(from_fhir, backend) - _probabilities(from_csv, backend))) <= 1e-6


@pytest.mark.realdata
def test_real_file_as_fhir_trains_to_the_scores_of_the_same_csv(real_data_path, tmp_path):
    kaggle = _real_prefix(real_data_path, tmp_path)
    from_fhir = loader.load(write_fhir(kaggle, tmp_path / "fhir"))
    csv, schema = _fhir_twin_csv(kaggle, tmp_path / "twin.csv")
    for backend in ("numpy", "torch"):
        difference = _probabilities(from_fhir, backend) - _probabilities(loader.load(csv, schema=schema), backend)
        assert np.max(np.abs(difference)) <= 1e-6


def test_fhir_default_schema_reads_codings_district_and_birth_date(small_csv, tmp_path):
    data = loader.load(write_fhir(small_csv, tmp_path / "fhir"))
    assert data.schema.categorical == ("appointmentType", "district")
    assert data.schema.has("birth_date") and not data.schema.has("appointment_time")
    assert set(data.frame["appointmentType"].unique()) <= {"ROUTINE", "FOLLOWUP"}


def test_fhir_statuses_other_than_outcomes_are_left_out_and_counted(small_csv, tmp_path):
    folder = write_fhir(small_csv, tmp_path / "fhir")
    lines = (folder / "Appointment.ndjson").read_text().splitlines()
    changed = [json.loads(line) for line in lines]
    for resource in changed[:7]:
        resource["status"] = "cancelled"
    (folder / "Appointment.ndjson").write_text("".join(json.dumps(r) + "\n" for r in changed))
    data = loader.load(folder)
    assert data.frame.height == 3000 - 7
    assert any(q.name == "outcome 'cancelled'" and q.count == 7 for q in data.quirks)


# --------------------------------------------------------------------------------------------------
# What an export lacks, and what it has more of


def _reduced(kaggle: Path, out: Path, cancelled_every: int = 25) -> tuple[Path, Path]:
    frame = renamed_frame(kaggle).drop("Bolsa", "Handicap", "District")
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) % cancelled_every == 0).then(pl.lit("Cancelled"))
                               .otherwise(pl.col("Status")).alias("Status"))
    frame.write_csv(out / "reduced.csv")
    schema = RENAMED_SCHEMA.replace('flags = ["Bolsa", "HTN", "DM", "Alcohol"]', 'flags = ["HTN", "DM", "Alcohol"]') \
        .replace('categorical = ["Handicap", "District"]', 'categorical = []').replace('groups = ["Sex", "District"]',
                                                                                      'groups = ["Sex"]')
    return out / "reduced.csv", write_schema(schema, out / "reduced.toml")


def test_reduced_export_leaves_out_cancelled_rows_and_counts_them(small_csv, tmp_path):
    csv, schema = _reduced(small_csv, tmp_path)
    data = loader.load(csv, schema=read_schema(schema))
    assert data.frame.height == 3000 - 120
    assert [q.count for q in data.quirks if q.name == "outcome 'Cancelled'"] == [120]


def test_reduced_export_trains_and_reports_what_it_lacks(small_csv, tmp_path):
    csv, schema = _reduced(small_csv, tmp_path)
    out = tmp_path / "m.npz"
    result = run_main("train", "--data", str(csv), "--schema", str(schema), "--out", str(out), "--epochs", "2",
                      "--members", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    card = out.with_suffix(".card.md").read_text()
    assert "left out, no column for them: appointment_hour" in card
    check = run_main("check", "--data", str(csv), "--schema", str(schema))
    assert "outcome 'Cancelled': 120 rows -> left out" in check.stdout
    assert "absent roles:      appointment_time" in check.stdout


def test_appointment_time_adds_the_hour_feature_and_its_reason(small_csv, tmp_path):
    frame = renamed_frame(small_csv).with_columns(
        pl.format("{}:{}", (pl.int_range(pl.len()) % 9 + 8).cast(pl.String).str.zfill(2), pl.lit("30")).alias("Time"))
    frame.write_csv(tmp_path / "timed.csv", separator=";")
    schema = read_schema(write_schema(RENAMED_SCHEMA.replace('reminder_sent = "SMS"',
                                                             'reminder_sent = "SMS"\nappointment_time = "Time"'),
                                      tmp_path / "timed.toml"))
    prepared = prepare(loader.load(tmp_path / "timed.csv", schema=schema))
    spec = prepared.pipeline.spec
    assert "appointment_hour" in spec.numeric and spec.groups["appointment_time"] == ("appointment_hour",)
    assert prepared.raw["appointment_hour"].min() == 8.5 and prepared.raw["appointment_hour"].max() == 16.5


def test_birth_date_gives_the_age_at_the_appointment():
    schema = Schema.from_dict({"columns": {"appointment_id": "a", "patient_id": "p", "booked_at": "b",
                                           "appointment_date": "d", "birth_date": "born"}})
    records = [{"a": "1", "p": "x", "b": "2016-01-01T10:00", "d": "2016-05-01", "born": "1980-05-02"},
               {"a": "2", "p": "x", "b": "2016-01-01T10:00", "d": "2016-05-02", "born": "1980-05-02"}]
    assert loader.load_records(records, "req", schema=schema).frame[S.AGE].to_list() == [35, 36]


def test_text_appointment_ids_are_kept_as_text():
    schema = Schema.from_dict({"columns": {"appointment_id": "a", "patient_id": "p", "booked_at": "b",
                                           "appointment_date": "d"}})
    records = [{"a": "A-1", "p": "x", "b": "2016-01-01", "d": "2016-05-01"}]
    assert loader.load_records(records, "req", schema=schema).frame[S.APPOINTMENT_ID].to_list() == ["A-1"]


def test_covariate_reasons_read_in_plain_words(small_data, renamed):
    from noshow.clinic.reasons import describe

    spec = prepare(loader.load(renamed[0], schema=read_schema(renamed[1]))).pipeline.spec
    assert describe("District", {"District": "MARIA ORTIZ"}, spec) == "District MARIA ORTIZ"
    assert describe("HTN", {"HTN": 1}, spec) == "HTN"
    assert describe("HTN", {"HTN": 0}, spec) == "no HTN"


def test_fairness_audits_the_schema_groups(renamed):
    from noshow.clinic.fairness import subgroups

    data = loader.load(renamed[0], schema=read_schema(renamed[1]))
    groups = subgroups(data.frame, data.schema)
    assert list(groups) == ["gender", "age_band", "District"]
    assert set(groups["gender"]) == {"F", "M"}


# --------------------------------------------------------------------------------------------------
# The command line: the model reads its own layout


@pytest.fixture(scope="module")
def schema_model(tmp_path_factory, renamed) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.npz"
    result = run_main("train", "--data", str(renamed[0]), "--schema", str(renamed[1]), "--out", str(out),
                      "--epochs", "2", "--members", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def test_model_records_its_schema(schema_model, renamed):
    from noshow.model import TrainedModel

    assert TrainedModel.load(schema_model).schema == read_schema(renamed[1])


def test_predict_reads_files_through_the_models_schema(schema_model, renamed, tmp_path):
    result = run_main("predict", "--model", str(schema_model), "--data", str(renamed[0]), "--out",
                      str(tmp_path / "s.csv"), "--quiet")
    assert result.returncode == 0, result.stderr
    scores = pl.read_csv(tmp_path / "s.csv")
    assert scores.height == 3000 and scores["reasons"].str.len_chars().min() > 0


def test_predict_refuses_a_kaggle_file_for_a_schema_model(schema_model, small_csv, tmp_path):
    result = run_main("predict", "--model", str(schema_model), "--data", str(small_csv), "--out",
                      str(tmp_path / "s.csv"))
    assert_user_error(result, "missing column", "'ApptID'")
    assert not (tmp_path / "s.csv").exists()


def test_predict_refuses_another_schema_than_the_models(schema_model, renamed, tmp_path):
    other = write_schema(RENAMED_SCHEMA.replace('name = "renamed Kaggle"', 'name = "other"'), tmp_path / "o.toml")
    result = run_main("predict", "--model", str(schema_model), "--data", str(renamed[0]), "--schema", str(other),
                      "--out", str(tmp_path / "s.csv"))
    assert_user_error(result, "trained through the schema 'renamed Kaggle'")


def test_kaggle_model_refuses_fhir_input(tmp_path, small_csv):
    model = tmp_path / "k.npz"
    assert run_main("train", "--data", str(small_csv), "--out", str(model), "--epochs", "1", "--members", "1",
                    "--quiet").returncode == 0
    result = run_main("predict", "--model", str(model), "--data", str(write_fhir(small_csv, tmp_path / "fhir")),
                      "--out", str(tmp_path / "s.csv"))
    assert_user_error(result, "read as 'FHIR R4'", "trained on the Kaggle layout")


def test_schema_command_proposes_a_schema_that_reads_the_export(renamed, tmp_path):
    out = tmp_path / "proposed.toml"
    result = run_main("schema", "--data", str(renamed[0]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    proposed, written = read_schema(out), read_schema(renamed[1])
    assert proposed.columns == written.columns
    assert proposed.formats == written.formats
    assert (set(proposed.flags), set(proposed.categorical)) == (set(written.flags), set(written.categorical))
    assert loader.load(renamed[0], schema=proposed).frame.height == 3000


def test_schema_command_detects_a_day_first_date(tmp_path):
    from noshow.data.propose import date_format

    assert date_format(pl.Series(["13/05/2016", "01/06/2016"]))[0] == "%d/%m/%Y"
    assert date_format(pl.Series(["2016-05-13T08:00:00Z"]))[0] is None


# --------------------------------------------------------------------------------------------------
# Bad schemas and misfit files: one line, exit 2, nothing written

GOOD = {"columns": {"appointment_id": "ApptID", "patient_id": "PatientID", "booked_at": "BookedAt",
                    "appointment_date": "ApptDate", "outcome": "Status"},
        "outcome": {"missed": ["No Show"], "attended": ["Attended"]}}


BAD_SCHEMAS = [
    ({"colums": {}}, "unknown section 'colums' (did you mean 'columns'?)"),
    ({"columns": {**GOOD["columns"], "patient_idd": "X"}}, "unknown key 'patient_idd' in [columns] (did you mean 'patient_id'?)"),
    ({"columns": {**GOOD["columns"], "booked_at": "ApptID"}},
     "roles appointment_id and booked_at are both mapped to column 'ApptID'"),
    ({"covariates": {"flags": ["HTN"], "categorical": ["HTN"]}}, "covariate 'HTN' is declared twice"),
    ({"outcome": {"missed": ["X"], "attended": ["X"]}}, "outcome value 'X' is listed under both missed and attended"),
    ({"formats": {"booked_at": "dd/mm/yyyy"}}, "must be a strptime format"),
]
def _toml(sections: dict) -> str:
    """TOML text of sections of strings and lists of strings (all a schema file holds)."""
    lines = []
    for name, section in sections.items():
        lines.append(f"[{name}]")
        for key, value in section.items():
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("change, fragment", BAD_SCHEMAS)
def test_bad_schema_is_one_line(tmp_path, renamed, change, fragment):
    schema = write_schema(_toml({**GOOD, **change}), tmp_path / "bad.toml")
    result = run_main("train", "--data", str(renamed[0]), "--schema", str(schema), "--out", str(tmp_path / "m.npz"))
    assert_user_error(result, fragment)
    assert not (tmp_path / "m.npz").exists()


def test_schema_that_is_not_toml_is_one_line(tmp_path, renamed):
    schema = write_schema("[columns\nappointment_id = 1", tmp_path / "bad.toml")
    assert_user_error(run_main("check", "--data", str(renamed[0]), "--schema", str(schema)), "not a valid TOML file")


def _edited_export(renamed, tmp_path, line: int, column: str, value: str) -> Path:
    frame = pl.read_csv(renamed[0], separator=";", infer_schema=False)
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == line - 2).then(pl.lit(value))
                               .otherwise(pl.col(column)).alias(column))
    frame.write_csv(tmp_path / "edited.csv", separator=";")
    return tmp_path / "edited.csv"


def test_role_mapped_to_a_missing_column_is_one_line(renamed, tmp_path):
    schema = write_schema(RENAMED_SCHEMA.replace('outcome = "Status"', 'outcome = "Statuss"'), tmp_path / "s.toml")
    result = run_main("train", "--data", str(renamed[0]), "--schema", str(schema), "--out", str(tmp_path / "m.npz"))
    assert_user_error(result, "missing column 'Statuss' (found 'Status')")
    assert not (tmp_path / "m.npz").exists()


def test_date_that_does_not_match_its_format_names_the_line(renamed, tmp_path):
    export = _edited_export(renamed, tmp_path, 17, "ApptDate", "2016-05-13")
    assert_user_error(run_main("check", "--data", str(export), "--schema", str(renamed[1])),
                      "column ApptDate, line 17: '2016-05-13' is not a date matching the format '%d/%m/%Y'")


def test_undeclared_outcome_is_one_line_when_exclusions_are_listed(renamed, tmp_path):
    export = _edited_export(renamed, tmp_path, 40, "Status", "Rebooked")
    schema = write_schema(RENAMED_SCHEMA.replace('attended = ["Attended"]', 'attended = ["Attended"]\nexcluded = ["Cancelled"]'),
                          tmp_path / "s.toml")
    assert_user_error(run_main("check", "--data", str(export), "--schema", str(schema)),
                      "column Status, line 40: 'Rebooked' is not a declared outcome")


def test_bad_flag_value_names_the_line(renamed, tmp_path):
    export = _edited_export(renamed, tmp_path, 9, "HTN", "maybe")
    assert_user_error(run_main("check", "--data", str(export), "--schema", str(renamed[1])),
                      "column HTN, line 9: 'maybe' is not a yes/no value")


def _edited_fhir(small_csv, tmp_path, line: int, edit) -> Path:
    """The FHIR export of ``small_csv`` with Appointment line ``line`` (from 1) passed through ``edit``."""
    folder = write_fhir(small_csv, tmp_path / "fhir")
    lines = (folder / "Appointment.ndjson").read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    (folder / "Appointment.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def _without(key: str):
    def edit(line: str) -> str:
        resource = json.loads(line)
        del resource[key]
        return json.dumps(resource)
    return edit


def test_fhir_line_that_is_not_json_names_file_and_line(small_csv, tmp_path):
    folder = _edited_fhir(small_csv, tmp_path, 5, lambda line: line[:-3])
    assert_user_error(run_main("check", "--data", str(folder)), "Appointment.ndjson: line 5: not JSON")


def test_fhir_resource_without_a_required_element_names_file_and_line(small_csv, tmp_path):
    folder = _edited_fhir(small_csv, tmp_path, 3, _without("status"))
    assert_user_error(run_main("check", "--data", str(folder)), "Appointment.ndjson: line 3: not a valid FHIR R4 "
                      "Appointment", "status")


def test_fhir_appointment_without_created_names_file_and_line(small_csv, tmp_path):
    folder = _edited_fhir(small_csv, tmp_path, 1, _without("created"))
    assert_user_error(run_main("check", "--data", str(folder)), "line 1: Appointment", "lacks created")

# --------------------------------------------------------------------------------------------------
# The service reads FHIR Bundles through the model's schema


def test_service_scores_a_fhir_bundle_as_the_export_file(small_csv, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from noshow.clinic.scoring import score
    from noshow.model import TrainedModel
    from noshow.serve.app import create_app
    from noshow.serve.service import Settings

    folder = write_fhir(small_csv, tmp_path / "fhir")
    model_path = tmp_path / "fhir.npz"
    assert run_main("train", "--data", str(folder), "--out", str(model_path), "--epochs", "1", "--hidden", "8",
                    "--members", "1", "--quiet").returncode == 0
    appointments = [json.loads(line) for line in (folder / "Appointment.ndjson").read_text().splitlines()[:30]]
    patients = {p["id"]: p for p in map(json.loads, (folder / "Patient.ndjson").read_text().splitlines())}
    wanted = {a["participant"][0]["actor"]["reference"].split("/")[1] for a in appointments}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in (*appointments, *(patients[k] for k in sorted(wanted)))]}
    answer = TestClient(create_app(Settings(str(model_path)))).post("/score", json=bundle)
    assert answer.status_code == 200, answer.text
    model = TrainedModel.load(model_path)
    expected = score(model, loader.load_bundle(bundle, "bundle", schema=model.schema))
    got = answer.json()["scores"]
    assert [r["no_show_probability"] for r in got] == expected["no_show_probability"].to_list()
    assert [r["reasons"] for r in got] == expected["reasons"].to_list()


def test_service_refuses_a_bundle_for_a_kaggle_layout_model(small_csv, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from noshow.serve.app import create_app
    from noshow.serve.service import Settings

    model_path = tmp_path / "k.npz"
    assert run_main("train", "--data", str(small_csv), "--out", str(model_path), "--epochs", "1", "--hidden", "8",
                    "--members", "1", "--quiet").returncode == 0
    appointment, = fhir_resources(small_csv)[0][:1]
    answer = TestClient(create_app(Settings(str(model_path)))).post(
        "/score", json={"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appointment}]})
    assert answer.status_code == 400 and "trained on the Kaggle layout" in answer.text


def test_schema_model_file_keeps_its_feature_order(small_data, renamed, tmp_path):
    from noshow.model import TrainedModel

    export = loader.load(renamed[0], schema=read_schema(renamed[1]))
    trained, _ = train_model(prepare(export), "numpy", TINY)
    trained.save(tmp_path / "m.npz")
    loaded = TrainedModel.load(tmp_path / "m.npz")
    assert loaded.pipeline.spec == trained.pipeline.spec
    assert loaded.pipeline.feature_names == trained.pipeline.feature_names
    assert np.array_equal(loaded.predict_proba(export), trained.predict_proba(export))


def test_streamed_export_scores_as_the_streamed_kaggle_file(small_csv, renamed, tmp_path):
    scores = {}
    for name, data, schema in (("kaggle", small_csv, []), ("export", renamed[0], ["--schema", str(renamed[1])])):
        model = tmp_path / f"{name}.npz"
        assert run_main("train", "--data", str(data), *schema, "--stream", "--out", str(model), "--epochs", "1",
                        "--hidden", "8", "--members", "1", "--quiet").returncode == 0
        result = run_main("predict", "--model", str(model), "--data", str(data), "--stream", "--out",
                          str(tmp_path / f"{name}.csv"), "--quiet")
        assert result.returncode == 0, result.stderr
        scores[name] = pl.read_csv(tmp_path / f"{name}.csv")
    assert scores["export"]["AppointmentID"].to_list() == scores["kaggle"]["AppointmentID"].to_list()
    assert np.max(np.abs(scores["export"]["no_show_probability"].to_numpy()
                         - scores["kaggle"]["no_show_probability"].to_numpy())) <= 1e-6


def test_partition_with_a_schema_says_data_parallel_training_reads_the_kaggle_layout_and_writes_nothing(renamed, tmp_path):
    export, schema = renamed
    result = run_main("partition", "--data", str(export), "--schema", str(schema), "--parts", "2",
                      "--out", str(tmp_path / "parts"))
    assert_user_error(result, "data-parallel training, which reads the Kaggle layout only", "noshow train --data")
    assert not (tmp_path / "parts").exists()
