"""Opening the store that ``--db`` names, migrated to the current schema.

- A path (``noshow.db``) or ``sqlite:///...``: an SQLite file, the default for one machine. WAL
  mode, so that readers never wait for the writer; a busy timeout, so that a second writer waits
  for the first instead of failing; every transaction begins IMMEDIATE, taking the write lock at
  once, so that two writers never deadlock upgrading a read lock (SQLite's own advice).
- ``postgresql://user@host/db``: a PostgreSQL server (the ``postgres`` extra, psycopg 3), for a
  site whose staff work from several machines.

:func:`open_store` runs the migrations (alembic, programmatically, scripts shipped in the package)
under a lock, so that two services starting together on a new store migrate it once.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from noshow.errors import NoshowError

BUSY_TIMEOUT_MS = 30_000  # how long an SQLite writer waits for another's transaction to end
MIGRATIONS = Path(__file__).with_name("migrations")
POSTGRES_LOCK = 7_310_025  # pg_advisory_xact_lock key held while migrating (any fixed number of ours)
SCHEMES = ("sqlite", "postgresql")


def url_of(db: str) -> sa.URL:
    """The SQLAlchemy URL for ``--db``: a URL as given (``postgresql://`` uses psycopg 3), else an
    SQLite file path, which must lie in an existing folder."""
    if "://" not in db:
        path = Path(db)
        if not (path.parent if str(path.parent) else Path(".")).is_dir():
            raise NoshowError(f"--db {db}: folder {path.parent} does not exist")
        if path.is_dir():
            raise NoshowError(f"--db {db}: is a folder; give a database file such as noshow.db")
        return sa.URL.create("sqlite", database=os.fspath(path))
    try:
        url = sa.make_url(db)
    except sa.exc.ArgumentError:
        raise NoshowError(f"--db {db}: not a database URL (give a file such as noshow.db, or postgresql://...)") from None
    backend = url.get_backend_name()
    if backend not in SCHEMES:
        raise NoshowError(f"--db: {backend!r} databases are not supported; give an SQLite file or a postgresql:// URL")
    if backend == "postgresql" and url.get_driver_name() in ("psycopg2", "psycopg", ""):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):
        dbapi_connection.isolation_level = None  # the driver's own BEGIN off: ours below, IMMEDIATE
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def engine_for(db: str) -> sa.Engine:
    """An engine for ``--db`` (not yet migrated; :func:`open_store` migrates)."""
    url = url_of(db)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise NoshowError("--db postgresql://...: needs psycopg, an optional extra: pip install 'noshow[postgres]'") from None
    return sa.create_engine(url, pool_pre_ping=True)


def _config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", os.fspath(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration's revision: the schema this code reads and writes."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the store's schema to ``revision`` (the newest by default; nothing to do when it is there)."""
    from alembic import command

    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # SQLite's IMMEDIATE transaction is its lock
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def open_store(db: str) -> sa.Engine:
    """The engine of the store ``--db`` names, created if new and migrated to the current schema.
    An unreachable server or a file that is not a database is a :class:`NoshowError`."""
    engine = engine_for(db)
    try:
        migrate(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise NoshowError(f"--db {_shown(db)}: cannot open the store ({reason})") from None
    except sa.exc.DatabaseError as exc:
        engine.dispose()
        raise NoshowError(f"--db {_shown(db)}: not a noshow store ({type(exc.orig).__name__})") from None
    return engine


def _shown(db: str) -> str:
    """``db`` without a password, for messages."""
    return db if "://" not in db else sa.make_url(db).render_as_string(hide_password=True)
