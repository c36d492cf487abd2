"""alembic's entry point: migrates the connection that :func:`noshow.store.database.migrate` hands it.

Run only programmatically (no alembic.ini): the connection comes in ``config.attributes``, already
inside a transaction that holds the store's migration lock.
"""

from alembic import context

from noshow.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
