"""Data: the Kaggle schema, the strict loader, a clinic's own export through a schema file, FHIR R4,
synthetic appointments, causal features, splits and the out-of-core reader.

Nothing is imported here, so that importing one module does not pay for polars.
"""
