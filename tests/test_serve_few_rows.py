"""The service's few-row path (:meth:`Service.score_few_rows`, :mod:`noshow.data.features_rows`):
the same scores, ranks, flags and reasons as :func:`noshow.clinic.scoring.score` gives the same
rows with the same history, on the real file's rows; and the loader's way for anything else."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from conftest import run_main
from exports import RENAMED_SCHEMA, renamed_frame, write_renamed, write_schema
from noshow.clinic import scoring
from noshow.clinic.policies import Capacity, MaxF1
from noshow.data import loader
from noshow.data import schema as S
from noshow.data.features import raw_features
from noshow.data.features_rows import ROW_ORIENTED_ROWS, HistoryIndex, raw_rows, typed_records
from noshow.errors import NoshowError
from noshow.serve.service import REQUEST, Service, Settings, rows_json

TINY = ("--epochs", "2", "--hidden", "8", "--members", "2", "--quiet")
# Batches: one appointment (the usual request), a few, and both sides of the frame builders' switch.
BATCH_SIZES = (1,) * 40 + (7,) * 8 + (ROW_ORIENTED_ROWS, ROW_ORIENTED_ROWS + 50)


@pytest.fixture(scope="module")
def model_file(small_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("few") / "model.npz"
    result = run_main("train", "--data", str(small_csv), "--out", str(path), *TINY)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def service(model_file, real_data_path) -> Service:
    """The model served with the real file as its history."""
    return Service(Settings(str(model_file), str(real_data_path)))


@pytest.fixture(scope="module")
def real_records(real_data_path) -> list[dict]:
    """The real file's rows as a client sends them (text as the file has it, no outcome)."""
    return pl.read_csv(real_data_path, infer_schema=False).drop(S.LABEL).to_dicts()


def batches(records: list[dict], seed: int = 0) -> list[list[dict]]:
    """Requests of real rows: random rows, and a patient's rows together (same-day and later
    appointments of one patient in one request), some under new AppointmentIDs (not in the history)."""
    rng = random.Random(seed)
    by_patient: dict[str, list[dict]] = {}
    for record in records:
        by_patient.setdefault(record[S.PATIENT_ID], []).append(record)
    frequent = [rows for rows in by_patient.values() if len(rows) >= 5]
    out = [rng.sample(records, size) for size in BATCH_SIZES]
    out += [rng.choice(frequent) for _ in range(10)]
    out += [[{**r, S.APPOINTMENT_ID: str(10**9 + i)} for i, r in enumerate(rng.choice(frequent))] for _ in range(5)]
    return out


def file_path_rows(service: Service, records: list[dict], policy) -> list[dict]:
    """What the service answered before the few-row path: the loader, the history rows of the
    request's patients and :func:`scoring.score`, as JSON rows."""
    data = loader.load_records(records, REQUEST)
    return rows_json(scoring.score(service.model, data, service.history_of(data), policy))


@pytest.mark.parametrize("policy", [MaxF1(), Capacity(calls_per_day=2)], ids=["max-f1", "capacity"])
def test_few_row_path_gives_the_file_paths_scores_ranks_flags_and_reasons_on_real_rows(service, real_records, policy):
    compared = 0
    for records in batches(real_records):
        fast = service.score_few_rows(records, policy)
        slow = file_path_rows(service, records, policy)
        assert fast is not None
        assert [r[scoring.PROBABILITY] for r in fast] == pytest.approx([r[scoring.PROBABILITY] for r in slow], abs=1e-12)
        strip = lambda rows: [{k: v for k, v in r.items() if k != scoring.PROBABILITY} for r in rows]  # noqa: E731
        assert strip(fast) == strip(slow)
        compared += len(records)
    assert compared > 300


def test_few_row_raw_features_equal_raw_features_with_the_history(service, real_records):
    index = service.history_index
    for records in batches(real_records, seed=1)[::4]:
        data = loader.load_records(records, REQUEST)
        expected = raw_features(data.frame, service.history_of(data).frame)
        assert raw_rows(typed_records(records), index).equals(expected)


def test_few_row_raw_features_without_a_history_count_the_requests_rows_only(real_records):
    records = real_records[:60]
    data = loader.load_records(records, REQUEST)
    assert raw_rows(typed_records(records), None).equals(raw_features(data.frame))


def test_a_history_index_takes_a_patients_rows_in_file_order(real_data):
    index = HistoryIndex(real_data.frame)
    key = real_data.frame[S.PATIENT_KEY][0]
    expected = real_data.frame.filter(pl.col(S.PATIENT_KEY) == key)
    assert index.rows_of([key, "no such patient"]).equals(expected)


@pytest.mark.parametrize("change", [
    {S.AGE: " 62"}, {S.AGE: "+62"}, {S.AGE: 62.0}, {S.SMS_RECEIVED: True}, {S.PATIENT_ID: "9377952927E-5"},
    {S.SCHEDULED_DAY: "2016-04-29 18:38:08"}, {S.NEIGHBOURHOOD: "JARDIM DA PENHA "}, {S.LABEL: "No"},
], ids=["blank", "plus", "float", "boolean", "exponent-id", "no-T", "trailing-blank", "outcome"])
def test_a_value_in_another_form_goes_the_loaders_way_with_its_answer(service, real_records, change):
    records = [real_records[3], {**real_records[5], **change}]
    assert service.score_few_rows(records) is None
    body = json.dumps(records).encode()
    try:
        expected = {"scores": file_path_rows(service, records, None)}
    except NoshowError as error:
        with pytest.raises(NoshowError, match=str(error).replace("(", r"\(").replace(")", r"\)")):
            service.score_json(body)
    else:
        assert service.score_json(body)["scores"] == expected["scores"]


def test_a_missing_column_goes_the_loaders_way_and_is_named(service, real_records):
    record = {k: v for k, v in real_records[0].items() if k != S.AGE}
    assert service.score_few_rows([record]) is None
    with pytest.raises(NoshowError, match="missing column 'Age'"):
        service.score_json(json.dumps(record).encode())


@pytest.fixture(scope="module")
def schema_service(tmp_path_factory, small_csv) -> tuple[Service, pl.DataFrame]:
    folder = tmp_path_factory.mktemp("few-schema")
    export, schema = write_renamed(small_csv, folder / "export.csv"), write_schema(RENAMED_SCHEMA, folder / "s.toml")
    out = folder / "model.npz"
    result = run_main("train", "--data", str(export), "--schema", str(schema), "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    return Service(Settings(str(out), str(export))), renamed_frame(small_csv)


def test_a_model_read_through_a_schema_is_scored_by_the_file_path(schema_service):
    service, export = schema_service
    records = export.head(5).drop("Status").to_dicts()
    assert service.score_few_rows(records) is None
    data = service.appointments_of_value(records)
    expected = rows_json(scoring.score(service.model, data, service.history_of(data)))
    assert service.score_json(json.dumps(records).encode())["scores"] == expected
