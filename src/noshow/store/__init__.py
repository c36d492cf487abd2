"""The clinic's store: every list issued, every call made, every outcome that came back.

The loop a clinic runs, kept in a real database so that another computer, a colleague or a cleared
browser cache loses nothing, and so that the list's realised precision and the call's effect can
be measured later. SQLAlchemy Core (tables and SQL expressions, no ORM) over an SQLite file by
default or a PostgreSQL server by URL; alembic migrates the schema by numbered versions.

- :mod:`noshow.store.tables`: the schema, defined once (tables, columns, call results, roles).
- :mod:`noshow.store.database`: opening a store from ``--db`` (SQLite file or URL), migrating it.
- ``migrations/``: the versioned migrations alembic runs (shipped with the package).
- :mod:`noshow.store.repository`: what the commands and the service read and write.
- :mod:`noshow.store.holdout`: the randomised holdout of each day's flagged appointments.
- :mod:`noshow.store.effect`: the call's effect, from the holdout (and the observational comparison).
- :mod:`noshow.store.monitor`: realised performance per day and week, calibration in practice, warnings.
- :mod:`noshow.store.monitor_report`: the monitor's HTML page with figures, and ``monitor.json``.
- :mod:`noshow.store.export`: every table as Parquet.
"""
