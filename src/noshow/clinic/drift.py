"""Does the file being scored still look like the data the model learnt from?

At training time :func:`training_profile` records, in the model file's JSON, the distribution of
every raw feature over the training rows (proportions in fixed bins or categories), the training
neighbourhoods and the training appointment days. At scoring time :func:`drift_report` compares the
scored file with it:

- **population stability index** per feature, PSI = Σ (q - p) · ln(q / p) over bins, p the training
  share and q the scored share (both floored at 1e-4 so an empty bin counts without being infinite);
  a feature group's PSI is its largest feature's. The industry's usual reading, kept here: < 0.1
  stable, 0.1–0.25 a moderate shift, > 0.25 a major one (the warning threshold);
- **unseen neighbourhoods**: the share of scored rows whose neighbourhood the model never saw
  (they are all read as "other"); warned above 5%, which is about the share of rows in the
  neighbourhoods too small to get their own input in the Kaggle file;
- **dates beyond the training range**: scored appointments more than 90 days after the last
  training day (a model learnt from one season meeting another: retrain at least quarterly), or
  before the first training day (scoring the past with a model that has seen its future).

A comparison needs enough rows to mean anything: PSI on a handful of appointments is noise, so
features are only judged on at least :data:`MIN_ROWS` scored rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.features import KAGGLE, FeatureSpec, raw_features

PROFILE_KEY = "training_profile"
PSI_WARN = 0.25
UNSEEN_WARN = 0.05
STALE_DAYS = 90
MIN_ROWS = 200
FLOOR = 1e-4
QUANTILE_BINS = 10
OTHER = "(other)"


def _numeric_edges(values: np.ndarray, column: str, spec: FeatureSpec = KAGGLE) -> list[float]:
    """Fixed domain edges where the pipeline has them, else training deciles (unique)."""
    if column in spec.binned:
        return [float(e) for e in spec.binned[column]]
    inner = np.quantile(values, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1]) if len(values) else []
    return sorted({float(e) for e in inner})


def _numeric_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return (counts / max(len(values), 1)).tolist()


def _category_shares(values: pl.Series, categories: list[str]) -> list[float]:
    text = values.cast(pl.String).fill_null(OTHER)
    known = text.is_in(categories)
    shares = [float((text == c).mean() or 0.0) for c in categories]
    return [*shares, float((~known).mean() or 0.0)]


def training_profile(raw_train: pl.DataFrame, appointment_days: pl.Series, spec: FeatureSpec = KAGGLE) -> dict:
    """The training distribution a later file is compared with (JSON-serialisable).

    ``raw_train`` : raw features of the training rows (:func:`noshow.data.features.raw_features`).
    ``appointment_days`` : their appointment dates.
    """
    features = {}
    for column in (*spec.numeric, *spec.binary):
        values = raw_train[column].cast(pl.Float64).fill_null(0.0).to_numpy()
        edges = _numeric_edges(values, column, spec)
        features[column] = {"edges": edges, "shares": _numeric_shares(values, edges)}
    for column in spec.categorical:
        counts = raw_train[column].cast(pl.String).value_counts(sort=True)
        categories = sorted(counts[column].drop_nulls().to_list())
        features[column] = {"categories": categories, "shares": _category_shares(raw_train[column], categories)}
    return {"rows": raw_train.height, "features": features,
            "first_day": str(appointment_days.min()), "last_day": str(appointment_days.max())}


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of two share vectors over the same bins."""
    p = np.maximum(np.asarray(expected, float), FLOOR)
    q = np.maximum(np.asarray(actual, float), FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def _scored_shares(spec: dict, values: pl.Series) -> list[float]:
    if "edges" in spec:
        return _numeric_shares(values.cast(pl.Float64).fill_null(0.0).to_numpy(), spec["edges"])
    return _category_shares(values, spec["categories"])


def watched(spec: FeatureSpec) -> tuple[str, ...]:
    """The categorical features whose unseen values are counted: the Kaggle file's neighbourhood,
    or an export's categorical covariates (clinic, specialty, district, ...)."""
    if spec == KAGGLE:
        return ("neighbourhood",)
    return tuple(c for c, kind in spec.covariates.items() if kind == "categorical")


def drift_report(profile: dict, raw: pl.DataFrame, appointment_days: pl.Series, spec: FeatureSpec = KAGGLE) -> dict:
    """Compare scored rows with the training profile.

    Returns ``{"rows", "features": [{"feature", "group", "psi"}], "groups": {group: psi},
    "unseen_neighbourhood_share", "days_after_training", "days_before_training", "warnings": [str]}``;
    PSI values are None when there are fewer than :data:`MIN_ROWS` rows. For an export read through
    a schema, ``unseen_shares`` (categorical covariate -> share of rows with a value the model never
    saw) stands for the neighbourhood's share.
    """
    judged = raw.height >= MIN_ROWS
    group_of = {c: g for g, columns in spec.groups.items() for c in columns}
    rows = []
    for column, shares in profile["features"].items():
        value = psi(shares["shares"], _scored_shares(shares, raw[column])) if judged and column in raw.columns else None
        rows.append({"feature": column, "group": group_of.get(column, column), "psi": value})
    groups: dict[str, float | None] = {}
    for row in rows:
        if row["psi"] is not None:
            groups[row["group"]] = max(groups.get(row["group"], 0.0), row["psi"])
    unseen = {column: float((~raw[column].cast(pl.String).is_in(profile["features"][column]["categories"])).mean()
                            or 0.0) if raw.height else 0.0 for column in watched(spec)}
    first, last = dt.date.fromisoformat(profile["first_day"]), dt.date.fromisoformat(profile["last_day"])
    after = max(0, (appointment_days.max() - last).days) if raw.height else 0
    before = max(0, (first - appointment_days.min()).days) if raw.height else 0
    shares = ({"unseen_neighbourhood_share": unseen["neighbourhood"]} if spec == KAGGLE
              else {"unseen_shares": unseen})
    report = {"rows": raw.height, "features": rows, "groups": groups, **shares,
              "days_after_training": after, "days_before_training": before}
    report["warnings"] = warnings(report, profile)
    return report


def warnings(report: dict, profile: dict) -> list[str]:
    """One line per problem found, each naming the threshold it crossed."""
    lines = [f"feature group '{group}' has shifted since training (PSI {value:.2f} > {PSI_WARN})"
             for group, value in sorted(report["groups"].items(), key=lambda kv: -kv[1]) if value > PSI_WARN]
    if report.get("unseen_neighbourhood_share", 0.0) > UNSEEN_WARN:
        lines.append(f"{report['unseen_neighbourhood_share']:.1%} of rows are in neighbourhoods the model never saw "
                     f"(> {UNSEEN_WARN:.0%}); they are scored as 'other'")
    for column, share in report.get("unseen_shares", {}).items():
        if share > UNSEEN_WARN:
            lines.append(f"{share:.1%} of rows have a {column} the model never saw (> {UNSEEN_WARN:.0%}); "
                         f"they are scored as 'other'")
    if report["days_after_training"] > STALE_DAYS:
        lines.append(f"appointments reach {report['days_after_training']} days past the last training day "
                     f"{profile['last_day']} (> {STALE_DAYS}); retrain on recent data")
    if report["days_before_training"] > 0:
        lines.append(f"appointments start {report['days_before_training']} days before the first training day "
                     f"{profile['first_day']}: the model has seen their future")
    return lines


def format_table(report: dict) -> str:
    """The full drift table for ``noshow check --model``."""
    lines = [f"drift against the model's training data ({report['rows']:,} rows scored"
             + ("" if report["rows"] >= MIN_ROWS else f"; under {MIN_ROWS}, PSI not judged") + "):",
             f"  {'feature':<24}{'group':<18}{'PSI':>8}"]
    for row in report["features"]:
        value = "–" if row["psi"] is None else f"{row['psi']:.3f}"
        flag = "  shifted" if row["psi"] is not None and row["psi"] > PSI_WARN else ""
        lines.append(f"  {row['feature']:<24}{row['group']:<18}{value:>8}{flag}")
    if "unseen_neighbourhood_share" in report:
        lines.append(f"  unseen neighbourhoods: {report['unseen_neighbourhood_share']:.1%} of rows")
    for column, share in report.get("unseen_shares", {}).items():
        lines.append(f"  unseen {column} values: {share:.1%} of rows")
    lines.append(f"  days after the last training day: {report['days_after_training']}; "
                 f"before the first: {report['days_before_training']}")
    lines += [f"  warning: {w}" for w in report["warnings"]] or ["  no warnings"]
    return "\n".join(lines)


def check_scored(model, data, history=None) -> dict | None:
    """:func:`drift_report` of ``data`` (scored with ``history``) against ``model``'s training
    profile; None for a model that recorded none (trained out of core)."""
    profile = model.metadata.get(PROFILE_KEY)
    if not isinstance(profile, dict) or "features" not in profile:
        return None
    raw = raw_features(data.frame, None if history is None else history.frame, spec=model.pipeline.spec)
    return drift_report(profile, raw, data.frame[S.APPOINTMENT_DATE], model.pipeline.spec)

