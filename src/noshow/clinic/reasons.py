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
Every appointment gets the 1-3 groups with the largest positive sizes (at least 0.005, so "+0.00"
never shows), strongest first, as ``text (+0.80)``; when no group raises its logit it gets
:data:`NO_RAISE` in words instead. An occluded copy differs from its row only in its group's
columns, so its first-layer pre-activation is the row's plus those columns' weights times their
change, and only the layers above are computed for it (:func:`reason_sizes`), by the model's own
backend: the NumPy twin with NumPy, the PyTorch twin with torch. The words are made column-wise,
each group's worded once per distinct value (:func:`reason_strings`).
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from noshow.allocator import one_arena
from noshow.data import schema as S
from noshow.data.features import GROUPS, KAGGLE, FeatureSpec
from noshow.errors import NoshowError
from noshow.nn.encoded import Encoded

if TYPE_CHECKING:  # the model sits above this module; only its type is needed here
    from noshow.model import TrainedModel

REFERENCE_KEY = "reason_reference"  # model-file metadata: raw column -> reference value
MAX_REASONS = 3
RANK_DECIMALS = 4  # reasons are ordered by their sizes rounded to this many decimals
MIN_SHOWN = 0.005  # smallest size that prints as non-zero with two decimals
SEPARATOR = "; "
# The reasons of a row that no group raises (no reason is cited): the call list, page and API show it as is.
NO_RAISE = "no factor raises this risk above a typical appointment"
REASONS = "reasons"  # the name of the column reason_strings makes
# Columns :func:`describe` reads beside a group's own (see _reads).
EXTRA_READS = {"prior_no_shows": ("prior_appointments",), "latest_outcome": ("prior_appointments",)}
ROW, ENTRY, TEXT, SIZE = "row", "entry", "text", "size"  # working columns of reason_strings
# Rows explained per batch: their first layers, then theirs and their copies' layers above (about
# 9 copies per row, 2048 x 10 x 256 float32 pre-activations: 20 MB, and as much per layer's output).
BLOCK_ROWS = 2048
STRING_ROWS = 65_536  # rows worded per piece: bounds the words' working columns (about 20 MB)

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


def _at_reference(encoded: Encoded, reference_row: Encoded, group: str, spec: FeatureSpec = KAGGLE) -> np.ndarray:
    """(n,) bool: rows whose ``group`` already equals the reference (occlusion changes nothing)."""
    cols, codes = _positions(group, spec)
    return (np.all(encoded.dense[:, cols] == reference_row.dense[0, cols], axis=1)
            & np.all(encoded.hot[:, codes] == reference_row.hot[0, codes], axis=1))


def _occluded_preactivations(a1: np.ndarray, weight: np.ndarray, block: Encoded, reference_row: Encoded,
                             moved: list[np.ndarray], names: list[str], spec: FeatureSpec = KAGGLE) -> np.ndarray:
    """The first-layer pre-activations (len(block) + copies, d_1) of a block's rows, ``a1``, then of
    their occluded copies, group after group (``moved[g]``: the rows whose group ``names[g]``
    differs from the reference). A copy's is its row's plus ``W_1[:, g] @ (reference - x)[g]``, for
    the first layer's ``weight`` (d_1, width): the group's dense columns times their weights, and
    for each of its one-hot codes the reference code's weight column minus the row's."""
    columns = np.ascontiguousarray(weight.T)  # row j: the weights of input column j, contiguous to gather
    out = np.empty((len(a1) + sum(len(rows) for rows in moved), a1.shape[1]), dtype=a1.dtype)
    out[:len(a1)] = a1
    end = len(a1)
    for name, rows in zip(names, moved):
        if not len(rows):
            continue
        copies = out[end:end + len(rows)]
        end += len(rows)
        np.take(a1, rows, axis=0, out=copies)
        cols, codes = _positions(name, spec)
        if cols:
            copies += (reference_row.dense[0, cols] - block.dense[rows][:, cols]) @ weight[:, cols].T
        for j in codes:  # moving code c to the reference's r adds W[:, r] - W[:, c]
            copies += (columns[reference_row.hot[0, j]] - columns)[block.hot[rows, j]]
    return out


def _member_passes(model: "TrainedModel", backend: str, device: str) -> list[tuple]:
    """For each member network of ``model``: ``(first, rest, weight)``, ``first(dense, hot)`` its
    first-layer pre-activation (n, d_1) and ``rest(a_1)`` its logits (n,), NumPy arrays in and out,
    each computed by ``backend``'s own network; ``weight`` its first layer's weights (d_1, width)."""
    from noshow.nn.config import member_prefix

    members = model._network(backend, device).members
    weights = [model.parameters[member_prefix(k) + "hidden.0.weight"] for k in range(len(members))]
    if backend == "numpy":
        return [(m.net.first_preactivation, m.net.logits_from_first_preactivation, w) for m, w in zip(members, weights)]
    import torch

    def torch_passes(member):
        net = member.model.eval()

        def first(dense, hot):
            with torch.inference_mode():
                hot = torch.as_tensor(hot, dtype=torch.long, device=member.device)
                return net.first_preactivation(member._tensor(dense), hot).cpu().numpy()

        def rest(a1):
            with torch.inference_mode():
                return net.logits_from_first_preactivation(member._tensor(a1)).cpu().numpy()

        return first, rest

    return [(*torch_passes(m), w) for m, w in zip(members, weights)]


def reason_sizes(model: "TrainedModel", raw: pl.DataFrame, backend: str = "numpy", device: str = "cpu",
                 encoded: Encoded | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n,) and reason sizes (n, groups of the model's feature spec) in log-odds, float64, of the raw features
    ``raw`` (:func:`noshow.data.features.raw_features`), by ``backend``'s own network.

    An occluded copy differs from its row only in its group's columns, so its first-layer
    pre-activation is the row's plus its group's columns' weights times their change
    (:func:`_occluded_preactivations`), and only the layers above are
    computed again: for each member network, each block of rows' first layer once, then the rows
    and all their occluded copies through the rest as one batch; the model's logit is the members'
    mean, as :meth:`~noshow.model.TrainedModel.predict_logits` averages them. The sizes are those of
    the occluded copies' own logits (to float rounding, ~1e-6 in float32). A row whose group
    already is the reference gets no copy for that group: occlusion would change nothing, so its
    size is 0 exactly (not a rounding difference between batch positions, which would let the twins
    disagree on a row with no positive reason). On synthetic data that skips about 45% of the
    copies.
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
    members = _member_passes(model, backend, device)
    n, names = len(encoded), list(spec.groups)
    logits, sizes = np.empty(n), np.zeros((n, len(names)))
    # The NumPy twin's gathers, adds and ReLUs run on one core: for more than a block of rows its
    # members go side by side on threads (NumPy releases the GIL in them), each with one BLAS
    # thread, so the cores are shared out by member rather than inside each small product (200,000
    # rows on 2 cores, medians: 8.1 s, against 13.0 s with BLAS's own threads and 8.4 s for the stacked
    # copies before the first-layer shortcut). A few rows (the service) are not worth a thread; the
    # PyTorch twin spreads its own work. The numbers repeat run to run; against BLAS's own threads
    # they may differ in the last float32 bit.
    workers = min(len(members), os.cpu_count() or 1) if backend == "numpy" and n > BLOCK_ROWS else 1
    with contextlib.ExitStack() as stack:
        run = map
        if workers > 1:  # one BLAS thread per member's thread: the cores are the members'
            one_arena()
            stack.enter_context(threadpool_limits(1, user_api="blas"))
            run = stack.enter_context(ThreadPoolExecutor(max_workers=workers)).map
        for start in range(0, n, BLOCK_ROWS):
            block = encoded.subset(slice(start, start + BLOCK_ROWS))
            moved = [np.flatnonzero(~_at_reference(block, reference_row, g, spec)) for g in names]

            def member_logits(member, block=block, moved=moved) -> np.ndarray:
                first, rest, weight = member
                a1 = first(block.dense, block.hot)
                return rest(_occluded_preactivations(a1, weight, block, reference_row, moved, names, spec))

            outs = list(run(member_logits, members))
            out = np.mean(outs, axis=0, dtype=dtype).astype(np.float64)  # one member: its logits, exactly
            logits[start:start + len(block)] = out[:len(block)]
            ends = len(block) + np.cumsum([len(rows) for rows in moved])
            for g, (rows, end) in enumerate(zip(moved, ends)):
                sizes[start + rows, g] = out[rows] - out[end - len(rows):end]
    return logits, sizes


def cited_groups(sizes: np.ndarray) -> np.ndarray:
    """(n, :data:`MAX_REASONS`) int: for each row of ``sizes`` (n, groups) the group indices to cite,
    strongest first, then -1: the groups that raise its logit by at least :data:`MIN_SHOWN`, at most
    :data:`MAX_REASONS`; a row that no group raises cites none (it gets :data:`NO_RAISE`). Ties go to
    the group listed first in :data:`GROUPS`; sizes are compared at :data:`RANK_DECIMALS` decimals,
    so float rounding (~1e-6) between the twins cannot reorder two groups of equal effect."""
    order = np.argsort(-np.round(sizes, RANK_DECIMALS), axis=1, kind="stable")[:, :MAX_REASONS]
    raises = np.take_along_axis(sizes, order, axis=1) >= MIN_SHOWN
    # A size just under MIN_SHOWN can round level with one just over it and rank first: keep the
    # raising ones, in their order, to the left.
    kept = np.argsort(~raises, axis=1, kind="stable")
    return np.where(np.take_along_axis(raises, kept, axis=1), np.take_along_axis(order, kept, axis=1), -1)


def top_reasons(sizes: np.ndarray) -> list[list[int]]:
    """:func:`cited_groups` as lists: for each row, the group indices it cites (possibly none)."""
    return [[int(g) for g in row if g >= 0] for row in cited_groups(sizes)]


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


def size_texts(sizes: np.ndarray) -> pl.Series:
    """``+0.80`` for each size in log-odds: Python's ``f"{size:+.2f}"``, its sign and two decimals,
    made column-wise: the size in hundredths, rounded; the few within 1e-9 of a half hundredth,
    where the float product could round the other way, are formatted by Python itself."""
    sizes = np.asarray(sizes, dtype=np.float64)
    hundredths = np.abs(sizes) * 100
    cents = np.rint(hundredths).astype(np.int64)
    text = pl.select(pl.concat_str(pl.Series(np.where(np.signbit(sizes), "-", "+")), pl.Series(cents // 100), pl.lit("."),
                                   pl.Series(cents % 100).cast(pl.String).str.zfill(2))).to_series()
    near_half = np.flatnonzero(np.abs(hundredths - np.floor(hundredths) - 0.5) < 1e-9)
    if near_half.size:
        text = text.scatter(near_half, [f"{s:+.2f}" for s in sizes[near_half]])
    return text


def format_reason(text: str, size: float) -> str:
    """``text (+0.80)``: the size in log-odds with its sign and two decimals."""
    return f"{text} ({size_texts(np.array([size]))[0]})"


def _reads(group: str, spec: FeatureSpec = KAGGLE) -> list[str]:
    """The raw columns :func:`describe` reads for ``group``: its own, and the count of earlier
    visits that words the history groups ("missed 1 of 2 earlier visits", "no earlier visit")."""
    extra = [c for c in EXTRA_READS.get(group, ()) if c in spec.raw_columns and c not in spec.groups[group]]
    return [*spec.groups[group], *extra]


def _group_texts(group: str, frame: pl.DataFrame, spec: FeatureSpec = KAGGLE) -> pl.Series:
    """:func:`describe` of ``group`` for each row of ``frame``, worded once per distinct value of
    the columns it reads (a few hundred at most, against one call per cited reason)."""
    reads = _reads(group, spec)
    values = frame.select(reads)
    distinct = values.unique()
    texts = [describe(group, dict(zip(reads, row)), spec) for row in distinct.iter_rows()]
    worded = distinct.with_columns(pl.Series(TEXT, texts, dtype=pl.String))
    return values.join(worded, on=reads, how="left", nulls_equal=True, maintain_order="left")[TEXT]


def reason_strings(raw: pl.DataFrame, sizes: np.ndarray, spec: FeatureSpec = KAGGLE) -> pl.Series:
    """The ``reasons`` column (String, one per row of ``raw``): its cited groups
    (:func:`cited_groups`) as ``text (+0.80)`` joined by ``; ``, or :data:`NO_RAISE` when no group
    raises its risk. Built column-wise, :data:`STRING_ROWS` rows at a time: each group's cited rows
    worded at once."""
    return pl.concat([_reason_strings(raw[start:start + STRING_ROWS], sizes[start:start + STRING_ROWS], spec)
                      for start in range(0, max(raw.height, 1), STRING_ROWS)])


def _reason_strings(raw: pl.DataFrame, sizes: np.ndarray, spec: FeatureSpec = KAGGLE) -> pl.Series:
    cited = cited_groups(sizes)
    row, rank = np.nonzero(cited >= 0)  # row-major: each row's reasons strongest first
    group = cited[row, rank]
    frame = raw.select(spec.raw_columns)
    parts = []
    for g, name in enumerate(spec.groups):
        entries = np.flatnonzero(group == g)
        if entries.size:
            parts.append(pl.DataFrame({ENTRY: entries, TEXT: _group_texts(name, frame[row[entries]], spec)}))
    n = raw.height
    if not parts:
        return pl.Series(REASONS, [NO_RAISE] * n, dtype=pl.String)
    texts = pl.concat(parts).sort(ENTRY)[TEXT]
    cells = pl.DataFrame({ROW: row, TEXT: texts, SIZE: size_texts(sizes[row, group])}).select(
        ROW, pl.format("{} ({})", TEXT, SIZE).alias(REASONS))
    joined = cells.group_by(ROW, maintain_order=True).agg(pl.col(REASONS).str.join(SEPARATOR))
    every = pl.DataFrame({ROW: np.arange(n)}).join(joined, on=ROW, how="left", maintain_order="left")
    return every[REASONS].fill_null(NO_RAISE)
