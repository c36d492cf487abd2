"""Data: the Kaggle schema, the strict loader, synthetic appointments, causal features, splits,
the compact encoded matrix and the out-of-core reader.

Nothing is imported here, so that a training worker that needs only :mod:`noshow.data.encoded`
does not pay for polars.
"""
