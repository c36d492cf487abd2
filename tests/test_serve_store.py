"""The service on a store (``serve --db``): lists recorded as issued, call results through the API,
people's own tokens and roles, the audit log, the monitor."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'noshow[serve]'")
import polars as pl  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from noshow.data import schema as S  # noqa: E402
from noshow.serve.app import create_app  # noqa: E402
from noshow.serve.service import Settings  # noqa: E402
from noshow.store import repository  # noqa: E402
from noshow.store import tables as T  # noqa: E402
from noshow.store.database import open_store  # noqa: E402

DAY = "2016-05-10"


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "noshow.db")


def client(tiny_model_file, db, **options) -> TestClient:
    return TestClient(create_app(Settings(str(tiny_model_file), db=db, **options)))


def make_list(api: TestClient, small_csv, headers=None, fmt=None):
    query = f"calls_per_day=10&day={DAY}" + (f"&format={fmt}" if fmt else "")
    return api.post(f"/call-list?{query}", files={"file": ("small.csv", small_csv.read_bytes())}, headers=headers or {})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_list_made_on_the_service_is_recorded_with_its_holdout(tiny_model_file, db, small_csv):
    api = client(tiny_model_file, db, holdout_share=0.2, holdout_seed=3)
    answer = make_list(api, small_csv).json()
    assert (answer["flagged"], answer["held_out"]) == (8, 2)
    listed = repository.listed_appointments(open_store(db))
    assert listed.height == pl.read_csv(small_csv, infer_schema=False).filter(
        pl.col(S.APPOINTMENT_DAY).str.starts_with(DAY)).height
    assert int(listed["held_out"].sum()) == 2


def test_calls_posted_are_listed_for_their_day_with_who_made_them(tiny_model_file, db, small_csv):
    api = client(tiny_model_file, db)
    first, second = [a[S.APPOINTMENT_ID] for a in make_list(api, small_csv).json()["appointments"][:2]]
    sent = api.post("/calls", json={"calls": [{"appointment_id": first, "day": DAY, "result": "reached", "client_id": "a"},
                                              {"appointment_id": second, "day": DAY, "result": "no_answer"}]})
    assert sent.json() == {"recorded": 2, "sent": 2}
    again = {"appointment_id": first, "day": DAY, "result": "reached", "client_id": "a"}
    assert api.post("/calls", json=again).json()["recorded"] == 0
    calls = api.get(f"/calls?day={DAY}").json()["calls"]
    assert [(c["appointment_id"], c["result"], c["user_name"]) for c in calls] == [
        (first, "reached", "anonymous"), (second, "no_answer", "anonymous")]


def test_a_bad_call_is_a_400_with_the_reason(tiny_model_file, db, small_csv):
    api = client(tiny_model_file, db)
    make_list(api, small_csv)
    answer = api.post("/calls", json={"appointment_id": 1, "day": DAY, "result": "reached"})
    assert answer.status_code == 400 and "on no list recorded" in answer.json()["error"]
    assert api.post("/calls", json={"day": DAY, "result": "reached"}).json()["error"].endswith("no 'appointment_id'")


def test_without_a_store_the_calls_endpoints_say_how_to_get_one(tiny_model_file):
    api = TestClient(create_app(Settings(str(tiny_model_file))))
    assert api.get("/me").json()["store"] is False
    answer = api.get(f"/calls?day={DAY}")
    assert answer.status_code == 404 and "--db" in answer.json()["error"]


def test_once_users_exist_each_request_needs_a_users_token_and_is_made_in_their_name(tiny_model_file, db, small_csv):
    caller = repository.add_user(open_store(db), "carla", "caller")
    api = client(tiny_model_file, db)
    assert api.get("/me").status_code == 401
    assert api.get("/me", headers=bearer("wrong")).status_code == 401
    assert api.get("/me", headers=bearer(caller)).json() == {"user": "carla", "role": "caller", "store": True}
    first = make_list(api, small_csv, bearer(caller)).json()["appointments"][0][S.APPOINTMENT_ID]
    api.post("/calls", json={"appointment_id": first, "day": DAY, "result": "reached"}, headers=bearer(caller))
    assert api.get(f"/calls?day={DAY}", headers=bearer(caller)).json()["calls"][0]["user_name"] == "carla"


def test_a_caller_may_not_download_lists_or_read_the_monitor_and_an_analyst_may(tiny_model_file, db, small_csv):
    engine = open_store(db)
    caller, analyst = repository.add_user(engine, "carla", "caller"), repository.add_user(engine, "ana", "analyst")
    api = client(tiny_model_file, db)
    assert make_list(api, small_csv, bearer(caller), "csv").status_code == 403
    assert api.get("/monitor", headers=bearer(caller)).status_code == 403
    assert make_list(api, small_csv, bearer(analyst), "csv").status_code == 200
    assert api.get("/monitor", headers=bearer(analyst)).json()["summary"]["days"] == 1
    page = api.get("/monitor?format=html", headers=bearer(analyst))
    assert page.headers["content-type"].startswith("text/html") and "Monitor" in page.text


def test_the_audit_log_names_the_user_and_the_day_and_no_patient(tiny_model_file, db, small_csv):
    engine = open_store(db)
    analyst = repository.add_user(engine, "ana", "analyst")
    api = client(tiny_model_file, db)
    make_list(api, small_csv, bearer(analyst))
    make_list(api, small_csv, bearer(analyst), "csv")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(T.audit.c.user_name, T.audit.c.action, T.audit.c.day)).all()
    assert [(u, a, str(d)) for u, a, d in rows] == [("ana", "read_list", DAY), ("ana", "download_list", DAY)]
    assert {c.name for c in T.audit.columns} == {"id", "at", "user_name", "action", "day"}
