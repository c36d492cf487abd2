"""Nothing lost: two services writing call results to one store at once (an SQLite file, a
PostgreSQL database) lose none, and a writer killed with SIGKILL leaves every transaction whole."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sqlalchemy as sa

from conftest import served
from noshow.store import repository
from noshow.store import tables as T
from noshow.store.database import head_revision, open_store
from store_fixtures import store_url
from test_store import DAY, day_scores, issue

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'noshow[serve]'")
CALLS_PER_THREAD = 40
BATCH = 10  # calls per transaction in the killed writer


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    return store_url(request.param, tmp_path)


def calls_stored(db: str) -> int:
    engine = open_store(db)
    with engine.connect() as connection:
        found = connection.execute(sa.select(sa.func.count()).select_from(T.calls)).scalar_one()
    engine.dispose()
    return found


def test_two_services_on_one_store_lose_no_call_result_under_concurrent_load(tiny_model_file, db, tmp_path):
    issue(open_store(db), day_scores(n=200, flagged=200))
    failures = []

    def post_calls(base: str, thread: int):
        with httpx.Client(base_url=base, timeout=60) as client:
            for i in range(CALLS_PER_THREAD):
                call = {"appointment_id": 100 + (thread * CALLS_PER_THREAD + i) % 200, "day": str(DAY),
                        "result": "no_answer", "client_id": f"t{thread}-{i}"}
                answer = client.post("/calls", json=call)
                if answer.status_code != 200 or answer.json()["recorded"] != 1:
                    failures.append(answer.text)

    with contextlib.ExitStack() as services:  # both stopped before the count
        bases = [services.enter_context(served(["--model", str(tiny_model_file), "--db", db, "--no-access-log"],
                                               tmp_path / f"service{k}.log")) for k in range(2)]
        threads = [threading.Thread(target=post_calls, args=(bases[t % 2], t)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert calls_stored(db) == 4 * CALLS_PER_THREAD


WRITER = textwrap.dedent("""
    import sys, datetime
    from noshow.store.database import head_revision, open_store
    from noshow.store.repository import Call, record_calls
    engine = open_store(sys.argv[1])
    day = datetime.date.fromisoformat(sys.argv[2])
    batch = 0
    while True:
        record_calls(engine, [Call(100 + i, day, "reached") for i in range(%d)], "writer")
        batch += 1
        if batch == 3:
            print("writing", flush=True)
""" % BATCH)


def test_a_writer_killed_mid_write_leaves_every_transaction_whole(db):
    issue(open_store(db), day_scores(n=BATCH, flagged=BATCH))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db, str(DAY)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.5)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    stored = calls_stored(db)
    assert stored >= 3 * BATCH and stored % BATCH == 0
    engine = open_store(db)
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    assert repository.record_calls(engine, [repository.Call(100, DAY, "no_answer")], "after") == 1
    assert calls_stored(db) == stored + 1


OPENER = "import sys; from noshow.store.database import head_revision, open_store; open_store(sys.argv[1]); print('opened')"


def test_two_processes_opening_a_new_store_at_once_migrate_it_once(db):
    openers = [subprocess.Popen([sys.executable, "-c", OPENER, db], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    results = [p.communicate(timeout=60) for p in openers]
    assert [p.returncode for p in openers] == [0, 0], results
    engine = open_store(db)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [head_revision()]
