"""The store's versioned migrations (alembic); :func:`noshow.store.database.migrate` runs them."""
