"""The clinic's store: migrations, lists as issued (holdout, do-not-call), calls, outcomes, users,
export, and ``train --db``; on an SQLite file, and on PostgreSQL where a server is given."""

from __future__ import annotations

import datetime
import hashlib

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from conftest import assert_user_error, run_main
from noshow.clinic import scoring
from noshow.data import schema as S
from noshow.errors import NoshowError
from noshow.store import holdout, repository
from noshow.store import tables as T
from noshow.store.database import head_revision, open_store
from noshow.store.repository import Call, ModelFacts
from store_fixtures import store_url

DAY = datetime.date(2016, 5, 10)
FACTS = ModelFacts("a" * 64, "model.npz", {"name": "model.npz"})


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    opened = open_store(store_url(request.param, tmp_path))
    yield opened
    opened.dispose()


def day_scores(n: int = 20, flagged: int = 10, day: datetime.date = DAY, first_id: int = 100) -> pl.DataFrame:
    """A day's scored appointments: risk falling with rank, the first ``flagged`` flagged."""
    ids = np.arange(first_id, first_id + n)
    return pl.DataFrame({S.APPOINTMENT_ID: ids, S.PATIENT_ID: [f"P{i}" for i in ids], S.APPOINTMENT_DAY: [day] * n,
                         scoring.PROBABILITY: np.linspace(0.9, 0.1, n), scoring.RANK: np.arange(1, n + 1),
                         scoring.FLAGGED: (np.arange(n) < flagged).astype(np.int8), scoring.REASONS: ["r"] * n})


def issue(engine, scores=None, share=None, seed=None):
    return repository.issue_lists(engine, day_scores() if scores is None else scores, FACTS, "capacity", "10 calls per day",
                                  "alice", "f" * 64, share, seed)


def count(engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


# Schema and migrations


def test_the_migrations_build_exactly_the_schema_the_tables_module_defines(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), T.metadata) == []


def test_opening_a_store_again_keeps_its_rows_and_its_version(tmp_path):
    path = str(tmp_path / "noshow.db")
    issue(open_store(path))
    again = open_store(path)
    assert count(again, T.list_rows) == 20
    with again.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head_revision()


def test_a_store_made_at_the_first_version_is_migrated_and_keeps_its_lists(tmp_path):
    from noshow.store.database import engine_for, migrate

    path = str(tmp_path / "noshow.db")
    old = engine_for(path)
    migrate(old, "0001")
    with old.begin() as connection:
        connection.execute(sa.insert(T.models).values(id=1, file_sha256="a" * 64, name="m", card={},
                                                      recorded_at=repository.now()))
        connection.exec_driver_sql("INSERT INTO lists (day, policy, rule, model_id, created_at, created_by, source_sha256) "
                                   "VALUES ('2016-05-10', 'capacity', 'r', 1, '2016-05-09 08:00:00', 'alice', 'f')")
    old.dispose()
    with open_store(path).connect() as connection:
        assert connection.execute(sa.select(T.lists.c.created_by, T.lists.c.drift)).all() == [("alice", None)]


def test_a_list_keeps_the_drift_of_its_appointments(tiny_model_file, small_csv, tmp_path):
    db = str(tmp_path / "noshow.db")
    assert run_main("predict", "--model", str(tiny_model_file), "--data", str(small_csv), "--out", str(tmp_path / "s.csv"),
                    "--db", db, "--quiet").returncode == 0
    drift = repository.list_drift(open_store(db))
    assert len(drift) == pl.read_csv(small_csv, infer_schema=False)[S.APPOINTMENT_DAY].n_unique()
    assert drift[0]["max_group_psi"] is not None and drift[0]["max_group_psi"] < 0.25  # scored the training file


def test_an_sqlite_store_is_in_wal_mode_with_a_busy_timeout(tmp_path):
    with open_store(str(tmp_path / "noshow.db")).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30_000


def test_a_file_that_is_not_a_database_is_a_one_line_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("not a database " * 100)
    assert_user_error(run_main("monitor", "--db", str(bad), "--out", str(tmp_path / "m")), str(bad), "not a noshow store")


def test_an_unreachable_server_is_a_one_line_error_without_its_password(tmp_path):
    result = run_main("monitor", "--db", "postgresql://clinic:secret@127.0.0.1:1/noshow", "--out", str(tmp_path / "m"))
    assert_user_error(result, "cannot open the store")
    assert "secret" not in result.stderr


# Lists as issued


def test_every_appointment_of_a_day_is_recorded_with_its_list(engine):
    issued = issue(engine)
    assert list(issued.list_ids) == [DAY]
    assert count(engine, T.list_rows) == 20
    with engine.connect() as connection:
        row = connection.execute(sa.select(T.lists)).mappings().one()
    assert (row["day"], row["policy"], row["created_by"], row["holdout_share"]) == (DAY, "capacity", "alice", None)


def test_the_holdout_sets_aside_the_stated_share_of_each_days_flagged_and_records_it(engine):
    scores = pl.concat([day_scores(40, 20), day_scores(40, 30, DAY + datetime.timedelta(days=1), 1000)])
    issued = issue(engine, scores, 0.1, 7)
    held = issued.scores.filter(pl.col(repository.WITHHELD) == repository.HOLDOUT_NOTE)
    assert held.group_by(S.APPOINTMENT_DAY).len().sort(S.APPOINTMENT_DAY)["len"].to_list() == [2, 3]
    assert held[scoring.FLAGGED].sum() == 0  # the list says not to call them
    listed = repository.listed_appointments(engine)
    assert listed.filter(pl.col("held_out"))["appointment_id"].sort().to_list() == held[S.APPOINTMENT_ID].sort().to_list()
    assert set(listed["holdout_share"].to_list()) == {0.1}


def test_the_holdout_draw_depends_on_seed_and_day_not_on_row_order():
    ids = np.arange(500, 600)
    chosen = holdout.draw(ids, DAY, 0.2, 3)
    shuffled = np.random.default_rng(0).permutation(ids)
    assert sorted(shuffled[holdout.draw(shuffled, DAY, 0.2, 3)]) == sorted(ids[chosen])
    assert chosen.sum() == 20
    assert not np.array_equal(chosen, holdout.draw(ids, DAY, 0.2, 4))


@pytest.mark.parametrize("share, seed, message", [(1.0, 1, "outside [0, 1)"), (0.1, None, "--holdout-seed")])
def test_a_bad_holdout_is_refused(share, seed, message):
    with pytest.raises(NoshowError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        holdout.check_share(share, seed)


def test_a_do_not_call_patient_is_left_off_every_later_list(engine):
    assert repository.mark_do_not_call(engine, "P100", "bob")
    assert not repository.mark_do_not_call(engine, "P100", "bob")
    issued = issue(engine).scores
    first = issued.filter(pl.col(S.PATIENT_ID) == "P100")
    assert (first[scoring.FLAGGED].item(), first[repository.WITHHELD].item()) == (0, repository.DO_NOT_CALL_NOTE)
    assert issued[scoring.FLAGGED].sum() == 9


def test_a_list_issued_again_warns_of_appointments_already_called(engine):
    issue(engine)
    repository.record_calls(engine, [Call(100, DAY, "no_answer"), Call(101, DAY, "reached")], "alice")
    assert issue(engine).already_called == 2


# Calls


def test_calls_are_appended_and_a_resent_client_id_is_recorded_once(engine):
    issue(engine)
    calls = [Call(100, DAY, "no_answer", client_id="c1"), Call(100, DAY, "reached", client_id="c2")]
    assert repository.record_calls(engine, calls, "alice") == 2
    assert repository.record_calls(engine, calls[1:], "alice") == 0
    found = repository.calls_on(engine, DAY)
    assert [(c["result"], c["user_name"]) for c in found] == [("no_answer", "alice"), ("reached", "alice")]


def test_a_call_for_an_appointment_on_no_list_of_its_day_is_refused(engine):
    issue(engine)
    with pytest.raises(NoshowError, match="on no list recorded for 2016-05-11"):
        repository.record_calls(engine, [Call(100, DAY + datetime.timedelta(days=1), "reached")], "alice")
    assert count(engine, T.calls) == 0


def test_a_call_result_outside_the_codes_is_refused(engine):
    issue(engine)
    with pytest.raises(NoshowError, match="not one of reached, no_answer"):
        repository.record_calls(engine, [Call(100, DAY, "left a message")], "alice")


# Outcomes


def test_outcomes_are_recorded_once_and_a_changed_one_is_reported_not_overwritten(engine):
    issue(engine)
    ids = np.arange(100, 120)
    missed = np.arange(20) % 3 == 0
    first = repository.record_outcomes(engine, ids, missed, "e1")
    again = repository.record_outcomes(engine, ids, missed, "e1")
    changed = missed.copy()
    changed[0] = not changed[0]
    conflict = repository.record_outcomes(engine, ids, changed, "e2")
    assert (first.new, again.new, again.unchanged, again.conflicts) == (20, 0, 20, [])
    assert conflict.conflicts == [(100, True, False)] and conflict.new == 0
    stored = repository.listed_appointments(engine).filter(pl.col("appointment_id") == 100)["missed"].item()
    assert stored is True


def test_outcomes_of_appointments_on_no_list_are_counted_not_stored(engine):
    issue(engine)
    done = repository.record_outcomes(engine, np.array([100, 9_999]), np.array([1, 0]), "e1")
    assert (done.new, done.unknown) == (1, 1)
    assert count(engine, T.outcomes) == 1


def export_rows(ids, day, booked) -> pl.DataFrame:
    """Rows of a later export as the loader gives them: IDs, the appointment's day, when booked."""
    return pl.DataFrame({S.APPOINTMENT_ID: ids, S.APPOINTMENT_DATE: [day] * len(ids), S.SCHEDULED_DAY: booked})


def at(hour: int, day: datetime.date = DAY) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=datetime.timezone.utc)


def test_bookings_kept_are_those_of_listed_days_on_no_list_and_once(engine):
    issue(engine)
    other_day = DAY + datetime.timedelta(days=1)
    booked = [datetime.datetime(2016, 5, 9, 12)] * 3
    rows = pl.concat([export_rows([100, 500, 501], DAY, booked), export_rows([600], other_day, booked[:1])])
    assert repository.record_bookings(engine, rows, "e1") == 2  # 100 is listed; 600's day has no list
    assert repository.record_bookings(engine, rows, "e1") == 0
    _, kept = repository.slot_events(engine)
    assert sorted(kept) == [(DAY, datetime.datetime(2016, 5, 9, 12))] * 2


def test_a_freed_slot_is_refilled_only_by_a_later_booking_for_its_day():
    from noshow.store.monitor import refilled_slots

    day, next_day = DAY, DAY + datetime.timedelta(days=1)
    t = lambda hour: datetime.datetime(2016, 5, 9, hour)  # noqa: E731
    freed = [(day, t(9)), (day, t(11)), (next_day, t(9))]
    booked = [(day, t(8)), (day, t(10)), (day, t(12)), (day, t(13)), (next_day, t(8))]
    # day: 08 before any freeing (no), 10 fills 09's, 12 fills 11's, 13 finds none open; next day: 08 too early
    assert refilled_slots(freed, booked) == 2
    assert refilled_slots(freed, []) == 0 and refilled_slots([], booked) == 0


def test_monitor_counts_the_freed_slots_booked_again(engine):
    from noshow.store import monitor

    issue(engine)
    repository.record_calls(engine, [Call(100, DAY, "cancelled", called_at=at(9)), Call(101, DAY, "rescheduled", called_at=at(9)),
                                     Call(102, DAY, "reached", called_at=at(9))], "alice")
    repository.record_bookings(engine, export_rows([500, 501, 502], DAY, [at(8), at(10), at(11)]), "e1")
    freed = monitor.monitor(engine)["freed_slots"]
    assert (freed["cancelled"], freed["rescheduled"], freed["freed"], freed["refilled"]) == (1, 1, 2, 2)
    assert freed["refill_rate"] == 1.0 and freed["bookings_recorded"] == 3


# Users


def test_a_users_token_is_stored_only_as_its_hash(tmp_path):
    path = tmp_path / "noshow.db"
    engine = open_store(str(path))
    token = repository.add_user(engine, "carla", "caller")
    assert repository.user_for_token(engine, token) == repository.User("carla", "caller")
    assert repository.user_for_token(engine, token + "x") is None
    with engine.connect() as connection:
        assert connection.execute(sa.select(T.users.c.token_sha256)).scalar_one() == hashlib.sha256(token.encode()).hexdigest()
    engine.dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.encode() not in stored


def test_users_add_prints_the_token_once_and_refuses_a_second_user_of_that_name(tmp_path):
    db = str(tmp_path / "noshow.db")
    added = run_main("users", "add", "dora", "--role", "analyst", "--db", db)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert repository.user_for_token(open_store(db), token).role == "analyst"
    assert_user_error(run_main("users", "add", "dora", "--role", "caller", "--db", db), "exists already")


# The command line around the store


def test_predict_db_records_each_days_list_and_the_csv_says_who_is_held_out(tiny_model_file, small_csv, tmp_path):
    db, out = str(tmp_path / "noshow.db"), tmp_path / "scores.csv"
    result = run_main("predict", "--model", str(tiny_model_file), "--data", str(small_csv), "--out", str(out),
                      "--calls-per-day", "20", "--db", db, "--holdout-share", "0.1", "--holdout-seed", "5")
    assert result.returncode == 0, result.stderr
    scores = pl.read_csv(out)
    days = scores[S.APPOINTMENT_DAY].n_unique()
    assert (scores[repository.WITHHELD] == repository.HOLDOUT_NOTE).sum() == 2 * days  # round(0.1 x 20) a day
    assert scores[scoring.FLAGGED].sum() == 18 * days
    engine = open_store(db)
    assert (count(engine, T.lists), count(engine, T.list_rows), count(engine, T.models)) == (days, 3000, 1)
    assert f"{2 * days} flagged appointment(s) set aside" in result.stderr


def test_the_holdout_needs_a_store(tiny_model_file, small_csv, tmp_path):
    assert_user_error(run_main("predict", "--model", str(tiny_model_file), "--data", str(small_csv), "--out",
                               str(tmp_path / "s.csv"), "--holdout-share", "0.1", "--holdout-seed", "1"), "needs --db")
    assert not (tmp_path / "s.csv").exists()


def test_outcomes_command_is_idempotent_and_reports_a_conflict(tiny_model_file, small_csv, tmp_path):
    db = str(tmp_path / "noshow.db")
    assert run_main("predict", "--model", str(tiny_model_file), "--data", str(small_csv), "--out", str(tmp_path / "s.csv"),
                    "--db", db, "--quiet").returncode == 0
    first = run_main("outcomes", "--data", str(small_csv), "--db", db)
    again = run_main("outcomes", "--data", str(small_csv), "--db", db)
    frame = pl.read_csv(small_csv, infer_schema=False)
    flipped = frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(
        pl.when(pl.col(S.LABEL) == "Yes").then(pl.lit("No")).otherwise(pl.lit("Yes"))).otherwise(pl.col(S.LABEL)).alias(S.LABEL))
    changed = tmp_path / "changed.csv"
    flipped.write_csv(changed)
    conflict = run_main("outcomes", "--data", str(changed), "--db", db)
    assert "3,000 new" in first.stdout and "0 new, 3,000 already recorded" in again.stdout
    assert "1 conflicting" in conflict.stdout and "kept as stored" in conflict.stderr


def test_db_export_writes_every_table_as_parquet(engine, tmp_path):
    from noshow.store.export import export_tables

    issue(engine)
    repository.record_calls(engine, [Call(100, DAY, "reached")], "alice")
    written = export_tables(engine, tmp_path / "export")
    assert set(written) == {t.name for t in T.TABLES}
    assert pl.read_parquet(tmp_path / "export" / "list_rows.parquet").height == 20
    assert pl.read_parquet(tmp_path / "export" / "calls.parquet")["result"].to_list() == ["reached"]


def test_train_db_leaves_out_the_appointments_acted_on(tiny_model_file, small_csv, tmp_path):
    db = str(tmp_path / "noshow.db")
    assert run_main("predict", "--model", str(tiny_model_file), "--data", str(small_csv), "--out", str(tmp_path / "s.csv"),
                    "--calls-per-day", "10", "--db", db, "--holdout-share", "0.2", "--holdout-seed", "1",
                    "--quiet").returncode == 0
    days = pl.read_csv(tmp_path / "s.csv")[S.APPOINTMENT_DAY].n_unique()
    result = run_main("train", "--data", str(small_csv), "--out", str(tmp_path / "m.npz"), "--epochs", "1",
                      "--hidden", "8", "--members", "1", "--db", db)
    assert result.returncode == 0, result.stderr
    assert f"left out {8 * days:,} appointment(s) acted on" in result.stderr  # 10 a day listed, 2 held out
