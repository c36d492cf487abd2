"""Stores for the tests: a fresh SQLite file, and a fresh database on the PostgreSQL server that
``$NOSHOW_TEST_POSTGRES`` names (``.ci/postgres start`` makes one); without it those tests skip."""

from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_ENV = "NOSHOW_TEST_POSTGRES"
NO_POSTGRES = (f"no PostgreSQL server for the tests: set ${POSTGRES_ENV} to a postgresql:// URL "
               f"(.ci/postgres start makes one where Debian's postgresql can be installed)")


def new_postgres_database() -> str:
    """The URL of a new, empty database on the test server."""
    import sqlalchemy as sa

    from noshow.store.database import url_of

    base = url_of(os.environ[POSTGRES_ENV])
    name = f"noshow_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def store_url(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return str(tmp_path / "noshow.db")
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(NO_POSTGRES)
    return new_postgres_database()
