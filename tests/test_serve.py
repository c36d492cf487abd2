"""The scoring service (``noshow serve``): its endpoints, its errors and its safety, through
FastAPI's test client on a tiny model trained by the command line."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import warnings

import polars as pl
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'noshow[serve]'")
httpx = pytest.importorskip("httpx", reason="the test client needs httpx")

with warnings.catch_warnings():  # starlette's test client asks for httpx2, not yet on PyPI's pins
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from conftest import assert_user_error, run_main  # noqa: E402
from noshow.clinic.scoring import SCORE_COLUMNS  # noqa: E402
from noshow.data import schema as S  # noqa: E402
from noshow.model import TrainedModel  # noqa: E402
from noshow.serve.app import create_app  # noqa: E402
from noshow.serve.run import listening_socket  # noqa: E402
from noshow.serve.schemas import EXAMPLE_APPOINTMENT  # noqa: E402
from noshow.serve.service import Settings  # noqa: E402

TINY = ("--epochs", "2", "--hidden", "8", "--members", "1", "--quiet")


@pytest.fixture(scope="module")
def model_file(small_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "model.npz"
    result = run_main("train", "--data", str(small_csv), "--backend", "numpy", "--out", str(path), *TINY)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def client(model_file):
    return TestClient(create_app(Settings(str(model_file))))


@pytest.fixture(scope="module")
def records(small_csv) -> list[dict]:
    """The first 40 rows of the small file as the JSON a client sends (text as the file has it)."""
    return pl.read_csv(small_csv, infer_schema=False).head(40).drop(S.LABEL, S.TRUE_PROBABILITY).to_dicts()


def predict_csv(tmp_path, rows_csv: str, *flags: str, model) -> pl.DataFrame:
    """``noshow predict``'s output CSV for the rows ``rows_csv``, read back as text."""
    data, out = tmp_path / "rows.csv", tmp_path / "scores.csv"
    data.write_text(rows_csv)
    result = run_main("predict", "--model", str(model), "--data", str(data), "--out", str(out), "--quiet", *flags)
    assert result.returncode == 0, result.stderr
    return pl.read_csv(out, infer_schema=False)


def as_text(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows).select(pl.all().cast(pl.String))


# --------------------------------------------------------------------------------------------------
# Endpoints


def test_health_answers_ok(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_model_reports_threshold_backend_and_training_days(client, model_file):
    facts = client.get("/model").json()
    model = TrainedModel.load(model_file)
    assert facts["threshold"] == model.threshold
    assert facts["backend"] == "numpy"
    assert facts["data"]["train_days"] == model.metadata["data"]["train_days"]
    assert facts["metrics"]["pr_auc"] == model.metadata["training"]["val_pr_auc"]
    assert facts["policy"]["name"] == "max-f1"


def test_score_of_one_appointment_gives_every_score_column(client):
    answer = client.post("/score", json=EXAMPLE_APPOINTMENT).json()
    assert list(answer["scores"][0]) == list(SCORE_COLUMNS)
    assert answer["scores"][0][S.APPOINTMENT_ID] == EXAMPLE_APPOINTMENT[S.APPOINTMENT_ID]
    assert 0 < answer["scores"][0]["no_show_probability"] < 1


def test_score_of_a_batch_equals_predicts_csv_on_the_same_rows(client, records, model_file, tmp_path):
    answer = client.post("/score", json=records)
    expected = predict_csv(tmp_path, pl.DataFrame(records).write_csv(), model=model_file)
    assert answer.status_code == 200
    assert as_text(answer.json()["scores"]).equals(expected)


def test_score_with_a_history_file_equals_predict_with_the_same_history(model_file, small_csv, records, tmp_path):
    with_history = TestClient(create_app(Settings(str(model_file), history_path=str(small_csv))))
    answer = with_history.post("/score", json=records[:25])
    expected = predict_csv(tmp_path, pl.DataFrame(records[:25]).write_csv(), "--history", str(small_csv), model=model_file)
    assert as_text(answer.json()["scores"]).equals(expected)


def test_score_accepts_an_object_holding_the_list(client, records):
    listed = client.post("/score", json=records[:3]).json()
    wrapped = client.post("/score", json={"appointments": records[:3]}).json()
    assert wrapped == listed


def test_score_flags_under_a_policy_given_as_query_parameters(client, records):
    answer = client.post("/score?calls_per_day=1", json=records).json()
    flagged = [r for r in answer["scores"] if r["flagged"]]
    assert answer["policy"] == "capacity"
    assert [r["rank_in_day"] for r in flagged] == [1] * len({r[S.APPOINTMENT_DAY] for r in answer["scores"]})


def test_call_list_of_an_uploaded_csv_equals_predicts_flagged_rows(client, small_csv, model_file, tmp_path):
    text = small_csv.read_text()
    answer = client.post("/call-list?calls_per_day=4&format=csv", files={"file": ("small.csv", text.encode())})
    expected = (predict_csv(tmp_path, text, "--calls-per-day", "4", model=model_file)
                .filter(pl.col("flagged") == "1").sort(S.APPOINTMENT_DAY, pl.col("rank_in_day").cast(pl.Int64)))
    assert answer.headers["content-type"].startswith("text/csv")
    assert pl.read_csv(answer.content, infer_schema=False).equals(expected)


def test_call_list_of_one_day_counts_the_files_other_days_as_history(client, small_csv, model_file, tmp_path):
    day = "2016-05-10"
    frame = pl.read_csv(small_csv, infer_schema=False)
    answer = client.post(f"/call-list?call_share=0.1&day={day}", files={"file": ("small.csv", small_csv.read_bytes())}).json()
    history = tmp_path / "history.csv"
    frame.write_csv(history)
    expected = predict_csv(tmp_path, frame.filter(pl.col(S.APPOINTMENT_DAY).str.starts_with(day)).write_csv(),
                           "--call-share", "0.1", "--history", str(history), model=model_file)
    expected = expected.filter(pl.col("flagged") == "1").sort(pl.col("rank_in_day").cast(pl.Int64))
    assert answer["day"] == day and answer["rows"] == 140
    assert as_text(answer["appointments"]).equals(expected)


def test_call_list_json_lists_flagged_rows_by_rank_with_the_days_of_the_file(client, records):
    answer = client.post("/call-list?calls_per_day=2", json=records).json()
    per_day = pl.DataFrame(records)[S.APPOINTMENT_DAY].str.slice(0, 10).value_counts().sort(S.APPOINTMENT_DAY)
    assert [d["day"] for d in answer["days_in_file"]] == per_day[S.APPOINTMENT_DAY].to_list()
    assert answer["flagged"] == len(answer["appointments"]) == per_day["count"].clip(upper_bound=2).sum()
    assert all(r["flagged"] == 1 for r in answer["appointments"])


def test_call_list_reads_a_csv_body_as_it_reads_an_uploaded_file(client, records):
    text = pl.DataFrame(records).write_csv().encode()
    as_body = client.post("/call-list?calls_per_day=2", content=text, headers={"content-type": "text/csv"}).json()
    as_file = client.post("/call-list?calls_per_day=2", files={"file": ("day.csv", text)}).json()
    assert as_body["appointments"] == as_file["appointments"] and as_body["flagged"] > 0


def test_a_form_without_a_file_is_400(client):
    answer = client.post("/call-list", data={"notfile": "x"}, files={"other": ("a.csv", b"x")})
    assert (answer.status_code, answer.json()) == (400, {"error": "request body: no file in the form field 'file'"})


def test_call_list_answers_csv_when_the_client_accepts_csv(client, records):
    answer = client.post("/call-list?calls_per_day=2", json=records, headers={"accept": "text/csv"})
    assert answer.text.splitlines()[0].split(",") == list(SCORE_COLUMNS)


def test_cost_policy_reports_the_expected_net_benefit(client, records):
    answer = client.post("/call-list?slot_value=100&call_cost=1&call_effect=0.3", json=records).json()
    assert answer["policy"] == "cost"
    assert answer["expected_net_benefit"] > 0


def test_openapi_describes_the_policy_parameters_by_the_clis_flag_names(client):
    spec = client.get("/openapi.json").json()
    names = [p["name"] for p in spec["paths"]["/call-list"]["post"]["parameters"]]
    assert names[:5] == ["calls_per_day", "call_share", "slot_value", "call_cost", "call_effect"]
    assert "Appointment" in spec["components"]["schemas"]


# --------------------------------------------------------------------------------------------------
# Malformed input: 400 with the command line's message, never a 500


def cli_error(tmp_path, monkeypatch, text: str, model) -> str:
    """The message ``noshow predict`` prints for a file ``bad.csv`` holding ``text``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text(text)
    result = run_main("predict", "--model", str(model), "--data", "bad.csv", "--out", "out.csv")
    assert_user_error(result)
    return result.stderr.strip().removeprefix("noshow: error: ")


@pytest.mark.parametrize("change", [
    {S.AGE: "forty"}, {S.APPOINTMENT_DAY: "2016-13-45T00:00:00Z"}, {S.GENDER: "X"}, {S.HANDICAP: "9"}])
def test_a_bad_value_in_an_uploaded_file_gets_the_clis_message(client, records, model_file, tmp_path, monkeypatch, change):
    text = pl.DataFrame([records[0], {**records[1], **change}]).write_csv()
    answer = client.post("/call-list", files={"file": ("bad.csv", text.encode())})
    assert answer.status_code == 400
    assert answer.json() == {"error": cli_error(tmp_path, monkeypatch, text, model_file)}


def test_a_missing_column_in_an_uploaded_file_gets_the_clis_message(client, records, model_file, tmp_path, monkeypatch):
    text = pl.DataFrame(records[:2]).drop(S.AGE).write_csv()
    answer = client.post("/call-list", files={"file": ("bad.csv", text.encode())})
    assert answer.json() == {"error": cli_error(tmp_path, monkeypatch, text, model_file)}


@pytest.mark.parametrize("body, message", [
    (b"", "request body: empty; send one appointment (a JSON object) or a list of them"),
    (b"{\"Age\": 3", "request body: not valid JSON (Expecting ',' delimiter at line 1 column 10)"),
    (b"[]", "request body: the list holds no appointments"),
    (b"[1, 2]", "request body: expected an appointment (a JSON object with the file's column names) or a list of them"),
    (b"\xff\xfe", "request body: not UTF-8 text"),
])
def test_a_malformed_json_body_is_400_with_what_is_wrong(client, body, message):
    answer = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert (answer.status_code, answer.json()) == (400, {"error": message})


@pytest.mark.parametrize("change, message", [
    ({S.AGE: "forty"}, "request body: column Age, line 2: 'forty' is not an integer"),
    ({S.AGE: 40.5}, "request body: column Age, line 2: '40.5' is not an integer"),
    ({S.AGE: [40]}, "request body: column Age, line 2: '[40]' is not an integer"),
    ({S.SCHEDULED_DAY: "yesterday"},
     "request body: column ScheduledDay, line 2: 'yesterday' is not a date-time like 2016-04-29T18:38:08Z"),
    ({S.GENDER: None}, "request body: column Gender: 1 missing value(s), first at line 2"),
    ({S.SMS_RECEIVED: True}, "request body: column SMS_received, line 2: 'true' is not an integer"),
])
def test_a_bad_value_in_a_json_body_names_column_and_record(client, change, message):
    answer = client.post("/score", json=[EXAMPLE_APPOINTMENT, {**EXAMPLE_APPOINTMENT, **change}])
    assert (answer.status_code, answer.json()) == (400, {"error": message})


def test_a_json_body_without_a_column_names_it(client):
    body = {k: v for k, v in EXAMPLE_APPOINTMENT.items() if k != S.NEIGHBOURHOOD}
    assert client.post("/score", json=body).json() == {"error": "request body: missing column 'Neighbourhood'"}


def test_a_bad_policy_value_gets_the_clis_message(client, records):
    answers = [client.post(f"/call-list?{query}", json=records).json()["error"]
               for query in ("calls_per_day=two", "call_share=1.5", "calls_per_day=2&call_cost=1")]
    assert answers == ["argument --calls-per-day: invalid int value: 'two'",
                       "--call-share: 1.5 is outside (0, 1]; give the share of each day's appointments to call",
                       "choose one policy: capacity (--calls-per-day or --call-share) or cost (--slot-value, "
                       "--call-cost, --call-effect), not both"]


def test_a_day_not_in_the_file_is_400(client, records):
    answer = client.post("/call-list?day=2017-01-01", json=records)
    assert answer.status_code == 400 and "no appointment on 2017-01-01" in answer.json()["error"]


def test_an_upload_that_is_not_csv_is_400(client):
    answer = client.post("/call-list", files={"file": ("x.csv", b"\x00\x01\x02binary")})
    assert answer.status_code == 400 and answer.json()["error"].startswith("x.csv: not a text CSV file")


def test_an_unexpected_error_is_500_json_and_its_message_is_not_logged(model_file, caplog):
    app = create_app(Settings(str(model_file)))

    def broken(body, policy):
        raise RuntimeError("patient 29872499824296 broke it")

    app.state.service.score_json = broken
    answer = TestClient(app, raise_server_exceptions=False).post("/score", json=EXAMPLE_APPOINTMENT)
    assert answer.status_code == 500 and answer.json()["error"].startswith("internal error")
    assert "RuntimeError answering POST /score" in caplog.text and "29872499824296" not in caplog.text


def test_the_api_pages_that_load_scripts_from_a_cdn_are_off(client):
    assert [client.get(path).status_code for path in ("/docs", "/redoc")] == [404, 404]


def test_an_unknown_path_is_404_json(client):
    assert client.get("/nowhere").json() == {"error": "Not Found"}


# --------------------------------------------------------------------------------------------------
# Safety


@pytest.fixture(scope="module")
def guarded(model_file):
    return TestClient(create_app(Settings(str(model_file), token="s3cret", max_body_mb=0.01)))


def test_a_request_without_the_token_is_401(guarded):
    answer = guarded.post("/score", json=EXAMPLE_APPOINTMENT)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_a_request_with_a_wrong_token_is_401(guarded):
    assert guarded.get("/model", headers={"authorization": "Bearer guess"}).status_code == 401


def test_a_request_with_the_token_is_answered(guarded):
    answer = guarded.post("/score", json=EXAMPLE_APPOINTMENT, headers={"authorization": "Bearer s3cret"})
    assert answer.status_code == 200


def test_health_and_the_page_need_no_token(guarded):
    assert [guarded.get(path).status_code for path in ("/health", "/", "/page/page.js")] == [200, 200, 200]


def test_a_body_declared_over_the_limit_is_413(guarded):
    answer = guarded.post("/score", content=b"[" + b" " * 20_000 + b"]",
                          headers={"authorization": "Bearer s3cret", "content-type": "application/json"})
    assert answer.status_code == 413 and "limit of 10,485 bytes" in answer.json()["error"]


def test_a_streamed_body_over_the_limit_is_413(guarded):
    def chunks():  # no Content-Length: the client sends it chunked
        for _ in range(20):
            yield b" " * 1000

    answer = guarded.post("/score", content=chunks(), headers={"authorization": "Bearer s3cret"})
    assert answer.status_code == 413


def test_serve_refuses_a_non_loopback_host_without_a_token(model_file, monkeypatch):
    monkeypatch.delenv("NOSHOW_TOKEN", raising=False)
    assert_user_error(run_main("serve", "--model", str(model_file), "--host", "0.0.0.0"), "--host 0.0.0.0", "token")


def test_serve_refuses_a_bad_model_file_before_listening(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    assert_user_error(run_main("serve", "--model", str(bad)), "bad.npz")


def test_serve_without_the_extra_says_how_to_install_it(model_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert_user_error(run_main("serve", "--model", str(model_file)), "pip install 'noshow[serve]'")


# --------------------------------------------------------------------------------------------------
# Several worker processes


def nodelay_of_accepted_connection(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection that asyncio accepts from ``listener`` (as uvicorn's workers do)."""
    async def accept_one() -> int:
        accepted = asyncio.get_running_loop().create_future()

        class Record(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Record, sock=listener)
        with socket.create_connection(listener.getsockname()[:2]):
            value = await asyncio.wait_for(accepted, 10)
        server.close()
        return value

    return asyncio.run(accept_one())


def test_connections_to_the_workers_shared_socket_send_without_nagles_delay():
    assert nodelay_of_accepted_connection(listening_socket("127.0.0.1", 0)) != 0


def test_a_port_already_taken_is_a_one_line_error(model_file):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert_user_error(run_main("serve", "--model", str(model_file), "--port", port), f"--port {port}: cannot listen there")


def test_two_workers_answer_as_one_process_does(client, model_file, records):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = subprocess.Popen([sys.executable, "-m", "noshow", "serve", "--model", str(model_file), "--port", str(port),
                                "--workers", "2", "--no-access-log"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):  # up to 30 s for the workers to load the model
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            answer = http.post("/score", json=records[:5])
        assert answer.json() == client.post("/score", json=records[:5]).json()
    finally:
        service.terminate()
        service.wait(20)


# --------------------------------------------------------------------------------------------------
# Both twins


def test_the_torch_backend_serves_the_same_probabilities(client, model_file, records):
    pytest.importorskip("torch")
    torch_client = TestClient(create_app(Settings(str(model_file), backend="torch")))
    by_numpy = [r["no_show_probability"] for r in client.post("/score", json=records).json()["scores"]]
    by_torch = [r["no_show_probability"] for r in torch_client.post("/score", json=records).json()["scores"]]
    assert by_torch == pytest.approx(by_numpy, abs=2e-6)


def test_a_numpy_service_never_imports_torch(model_file):
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from noshow.serve.app import create_app\n"
        "from noshow.serve.service import Settings\n"
        "from noshow.serve.schemas import EXAMPLE_APPOINTMENT\n"
        f"client = TestClient(create_app(Settings({str(model_file)!r}, backend='numpy')))\n"
        "assert client.post('/score', json=EXAMPLE_APPOINTMENT).status_code == 200\n"
        "assert client.get('/model').status_code == 200\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
