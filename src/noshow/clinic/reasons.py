"""Reasons per appointment, from the model itself: occlusion against a typical training appointment.

The features are cut into :data:`GROUPS` (lead time, prior no-shows, the latest outcome, ...), each
a set of the feature pipeline's own raw columns (every column in exactly one group). The *reference*
is a typical training appointment: each numeric column's training median (the lower median, so a
value that occurs) and each binary or categorical column's most frequent training value; on the
Kaggle file it is booked 4 days ahead, aged 37, no earlier visits, no SMS, no condition. It is
stored in the model file (``reason_reference``).

The size of group g for appointment x is, in log-odds of the network (the calibration map is
monotone, so the sign carries over to the probability)::

    size_g(x) = logit(x) - logit(x with group g's columns set to the reference)

so a positive size is how much that part of the appointment raises its risk above a typical one.
Every appointment gets the 1-3 groups with the largest positive sizes, strongest first, as
``text (+0.80)``; when no group raises its logit (by at least 0.005, so "+0.00" never shows) it
gets the single largest, with its sign. One forward pass of the original rows and one per group
(of the rows whose group differs from the reference), batched, by the model's own backend: the
NumPy twin with NumPy, the PyTorch twin with torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.encoded import Encoded
from noshow.data.features import GROUPS, KAGGLE, FeatureSpec
from noshow.errors import NoshowError

if TYPE_CHECKING:  # the model sits above this module; only its type is needed here
    from noshow.model import TrainedModel

REFERENCE_KEY = "reason_reference"  # model-file metadata: raw column -> reference value
MAX_REASONS = 3
RANK_DECIMALS = 4  # reasons are ordered by their sizes rounded to this many decimals
MIN_SHOWN = 0.005  # smallest size that prints as non-zero with two decimals
SEPARATOR = "; "
BLOCK_ROWS = 4096  # rows explained per batch of (groups + 1) forward passes

# The feature groups (each a tuple of the pipeline's raw columns) are the model's feature spec's:
# the Kaggle layout's are :data:`GROUPS`; a schema's export adds one group per covariate.
RAW_COLUMNS = KAGGLE.raw_columns
_grouped = [c for columns in GROUPS.values() for c in columns]
if sorted(_grouped) != sorted(RAW_COLUMNS):  # a new feature must be given a group, once
    raise ImportError(f"reason groups do not cover the features exactly once: {sorted(set(RAW_COLUMNS) ^ set(_grouped))}")
WEEKDAYS = {str(i): name for i, name in enumerate(
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), start=1)}


# --------------------------------------------------------------------------------------------------
# The reference


def reference_values(raw_train: pl.DataFrame, spec: FeatureSpec = KAGGLE) -> dict[str, float | int | str]:
    """The typical training appointment: lower median of each numeric column, most frequent value
    (ties: the smallest) of each binary and categorical one. JSON-ready."""
    reference: dict[str, float | int | str] = {}
    for name in spec.numeric:
        value = np.quantile(raw_train[name].to_numpy(), 0.5, method="lower")
        reference[name] = int(value) if raw_train[name].dtype.is_integer() else float(value)
    for name in (*spec.binary, *spec.categorical):
        mode = raw_train[name].value_counts().sort(["count", name], descending=[True, False])[name][0]
        reference[name] = mode if isinstance(mode, str) else int(mode)
    return reference


def check_reference(reference, spec: FeatureSpec = KAGGLE) -> dict:
    """Validate a reference read from a model file (a :class:`NoshowError` if malformed)."""
    if not isinstance(reference, dict) or sorted(reference) != sorted(spec.raw_columns):
        raise NoshowError("model file has no valid reason reference; retrain it with noshow train")
    for name, value in reference.items():
        wanted = str if name in spec.categorical else (int, float)
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise NoshowError(f"model file's reason reference for {name} is {value!r}")
    return reference


def with_reference(raw: pl.DataFrame, reference: dict, columns) -> pl.DataFrame:
    """``raw`` with ``columns`` set to their reference values (dtypes kept)."""
    return raw.with_columns(pl.lit(reference[c]).cast(raw[c].dtype).alias(c) for c in columns)


# --------------------------------------------------------------------------------------------------
# Sizes


def _positions(group: str, spec: FeatureSpec = KAGGLE) -> tuple[list[int], list[int]]:
    """The dense columns and one-hot code columns of ``group`` in an :class:`Encoded`:
    :meth:`~noshow.data.features.FeaturePipeline.encode` puts numeric then binary columns in the
    dense part, categorical then binned ones in the codes (a binned numeric column is in both)."""
    dense = {name: i for i, name in enumerate((*spec.numeric, *spec.binary))}
    hot = {name: j for j, name in enumerate((*spec.categorical, *spec.binned))}
    columns = spec.groups[group]
    return [dense[c] for c in columns if c in dense], [hot[c] for c in columns if c in hot]


def _occluded(encoded: Encoded, reference_row: Encoded, group: str, spec: FeatureSpec = KAGGLE) -> Encoded:
    """``encoded`` with ``group``'s dense columns and one-hot codes taken from ``reference_row``."""
    dense, hot = encoded.dense.copy(), encoded.hot.copy()
    cols, codes = _positions(group, spec)
    dense[:, cols] = reference_row.dense[0, cols]
    hot[:, codes] = reference_row.hot[0, codes]
    return Encoded(dense, hot, encoded.width)


def _at_reference(encoded: Encoded, reference_row: Encoded, group: str, spec: FeatureSpec = KAGGLE) -> np.ndarray:
    """(n,) bool: rows whose ``group`` already equals the reference (occlusion changes nothing)."""
    cols, codes = _positions(group, spec)
    return (np.all(encoded.dense[:, cols] == reference_row.dense[0, cols], axis=1)
            & np.all(encoded.hot[:, codes] == reference_row.hot[0, codes], axis=1))


def _stack(parts: list[Encoded]) -> Encoded:
    return Encoded(np.concatenate([p.dense for p in parts]), np.concatenate([p.hot for p in parts]), parts[0].width)


def reason_sizes(model: "TrainedModel", raw: pl.DataFrame, backend: str = "numpy", device: str = "cpu",
                 encoded: Encoded | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n,) and reason sizes (n, groups of the model's feature spec) in log-odds, float64, of the raw features
    ``raw`` (:func:`noshow.data.features.raw_features`), by ``backend``'s own forward pass.

    Each block of rows and its occluded copies go through the network as one batch. A row whose
    group already is the reference gets no copy for that group: occlusion would change nothing, so
    its size is 0 exactly (not a rounding difference between batch positions, which would let the
    twins disagree on a row with no positive reason). On synthetic data that skips about 45% of the
    copies, and as much of the network's work.
    """
    spec = model.pipeline.spec
    reference = check_reference(model.metadata.get(REFERENCE_KEY), spec)
    if raw.height == 0:
        return np.zeros(0), np.zeros((0, len(spec.groups)))
    dtype = model.config.np_dtype
    if encoded is None:
        encoded = model.pipeline.encode(raw, dtype)
    schema = raw.schema
    key = (REFERENCE_KEY, str(dtype), tuple((c, schema[c]) for c in spec.raw_columns))
    reference_row = model.derived.get(key)
    if reference_row is None:  # the same for every call with this model: encoded once
        reference_row = model.derived[key] = model.pipeline.encode(
            with_reference(raw.head(1), reference, spec.raw_columns), dtype)
    n, names = len(encoded), list(spec.groups)
    logits, sizes = np.empty(n), np.zeros((n, len(names)))
    for start in range(0, n, BLOCK_ROWS):
        block = encoded.subset(slice(start, start + BLOCK_ROWS))
        moved = [np.flatnonzero(~_at_reference(block, reference_row, g, spec)) for g in names]
        batch = _stack([block, *(_occluded(block.subset(rows), reference_row, g, spec) for g, rows in zip(names, moved))])
        out = model.predict_logits(batch, backend, device).astype(np.float64)
        logits[start:start + len(block)] = out[:len(block)]
        ends = len(block) + np.cumsum([len(rows) for rows in moved])
        for g, (rows, end) in enumerate(zip(moved, ends)):
            sizes[start + rows, g] = out[rows] - out[end - len(rows):end]
    return logits, sizes


def top_reasons(sizes: np.ndarray) -> list[list[int]]:
    """For each row of ``sizes`` (n, groups): the group indices to cite, strongest first: up to
    :data:`MAX_REASONS` with size >= :data:`MIN_SHOWN`, else the single largest. Ties go to the
    group listed first in :data:`GROUPS`; sizes are compared at :data:`RANK_DECIMALS` decimals, so
    float rounding (~1e-6) between the twins cannot reorder two groups of equal effect."""
    order = np.argsort(-np.round(sizes, RANK_DECIMALS), axis=1, kind="stable")
    chosen = []
    for row, ranked in zip(sizes, order):
        positive = [int(g) for g in ranked[:MAX_REASONS] if row[g] >= MIN_SHOWN]
        chosen.append(positive or [int(ranked[0])])
    return chosen


# --------------------------------------------------------------------------------------------------
# Words


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _conditions(row: dict) -> str:
    names = [label for flag, label in (("Hipertension", "hypertension"), ("Diabetes", "diabetes"),
                                       ("Alcoholism", "alcoholism")) if row[flag]]
    if row["handicap"] not in ("0", None):
        names.append(f"handicap level {row['handicap']}")
    return "recorded " + ", ".join(names) if names else "no recorded condition"


def _covariate(column: str, kind: str, value) -> str:
    """Words for a schema's covariate: ``HTN`` / ``no HTN``, ``Clinic Dermatology``, ``DistanceKm 12.5``."""
    if kind == "flag":
        return column if value else f"no {column}"
    if kind == "categorical":
        return f"{column} {value}"
    return f"{column} {value:g}"


def describe(group: str, row: dict, spec: FeatureSpec = KAGGLE) -> str:
    """Plain words for ``group`` of one appointment, from its raw feature values ``row``."""
    columns = spec.groups[group]
    if len(columns) == 1 and columns[0] in spec.covariates:
        return _covariate(columns[0], spec.covariates[columns[0]], row[columns[0]])
    if group == "appointment_time":
        hour = float(row["appointment_hour"])
        return f"appointment at {int(hour):02d}:{round(hour % 1 * 60):02d}"
    if group == "booking_time" and "booking_hour" not in columns:
        return f"booked on a {WEEKDAYS.get(row['booking_weekday'], row['booking_weekday'])}"
    if group == "lead_time":
        return "booked the same day" if row["lead_days"] == 0 else f"booked {_plural(int(row['lead_days']), 'day')} ahead"
    if group == "prior_no_shows":
        return f"missed {int(row['prior_no_shows'])} of {_plural(int(row['prior_appointments']), 'earlier visit')}"
    if group == "latest_outcome":
        if row["prior_appointments"] == 0:
            return "no earlier visit"
        return "missed the latest earlier visit" if row["previous_no_show"] else "came to the latest earlier visit"
    if group == "visit_history":
        if row["prior_appointments"] == 0:
            return "first visit"
        return (f"{_plural(int(row['prior_appointments']), 'earlier visit')}, the latest "
                f"{_plural(int(row['days_since_previous']), 'day')} before")
    if group == "bookings_ahead":
        return f"{_plural(int(row['booked_ahead']), 'later appointment')} already booked"
    if group == "other_bookings":
        return (f"{_plural(int(row['same_day_appointments']), 'appointment')} that day, "
                f"{int(row['session_appointments'])} booked together")
    if group == "sms":
        return "SMS reminder sent" if row[S.SMS_RECEIVED] else "no SMS reminder"
    if group == "age":
        return f"age {int(row['age'])}"
    if group == "sex":
        return "male" if row["male"] else "female"
    if group == "neighbourhood":
        return f"neighbourhood {str(row['neighbourhood']).title()}"
    if group == "weekday":
        return f"appointment on a {WEEKDAYS.get(row['weekday'], row['weekday'])}"
    if group == "booking_time":
        return f"booked at {int(row['booking_hour']):02d}h on a {WEEKDAYS.get(row['booking_weekday'], row['booking_weekday'])}"
    if group == "scholarship":
        return "in the Bolsa Familia programme" if row["Scholarship"] else "not in the Bolsa Familia programme"
    if group == "conditions":
        return _conditions(row)
    raise KeyError(group)


def format_reason(text: str, size: float) -> str:
    """``text (+0.80)``: the size in log-odds with its sign and two decimals."""
    return f"{text} ({size:+.2f})"


def reason_strings(raw: pl.DataFrame, sizes: np.ndarray, spec: FeatureSpec = KAGGLE) -> list[str]:
    """The ``reasons`` column: per row, its cited groups as ``text (+0.80)`` joined by ``; ``."""
    names = list(spec.groups)
    rows = raw.select(spec.raw_columns).iter_rows(named=True)
    return [SEPARATOR.join(format_reason(describe(names[g], row, spec), sizes[i, g]) for g in cited)
            for i, (row, cited) in enumerate(zip(rows, top_reasons(sizes)))]
