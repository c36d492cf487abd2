"""Does the call list treat groups of patients fairly? A table per subgroup, and findings.

Subgroups: gender, age band, Scholarship (the Bolsa Família welfare programme), SMS_received, and
neighbourhood (the 10 with the most evaluated rows, the rest as "other"). Per group: rows, observed
no-show rate, PR AUC, calibration gap (mean predicted minus observed rate), flag rate (share of the
group on the call list), the group's share of the call list against its share of the no-shows, and
recall (share of the group's no-shows that are called). A finding names each group whose
calibration gap exceeds ±0.05 or whose flag rate is more than twice or less than half the overall
rate, with its size, so that a reader can judge whether the gap is the model's or the group's.

An export read through a schema file is audited by the attributes its ``[audit]`` section names
(a categorical column by its 10 largest values, the rest as "other"; a flag as yes/no; a number by
its quartiles), after gender and age band when the export has them.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score

from noshow.data import schema as S
from noshow.data.schema_file import ROLE_COLUMNS, Schema

AGE_BANDS = ((0, 12, "0-12"), (13, 25, "13-25"), (26, 45, "26-45"), (46, 65, "46-65"), (66, 200, "66+"))
TOP_NEIGHBOURHOODS = 10
GAP_LIMIT = 0.05
FLAG_RATIO_LIMIT = 2.0
FAIRNESS_KEYS = ("attribute", "group", "rows", "no_show_rate", "pr_auc", "calibration_gap", "flag_rate",
                 "call_share", "no_show_share", "recall")


def _largest(values: np.ndarray, top: int = TOP_NEIGHBOURHOODS) -> np.ndarray:
    """``values`` (n,) with all but the ``top`` most frequent replaced by "other"."""
    labels, counts = np.unique(values.astype(str), return_counts=True)
    kept = labels[np.lexsort((labels, -counts))][:top]
    return np.where(np.isin(values.astype(str), kept), values.astype(str), "other").astype(object)


def _quartiles(values: np.ndarray) -> np.ndarray:
    edges = np.unique(np.quantile(values, [0.25, 0.5, 0.75]))
    band = np.searchsorted(edges, values, side="right")
    names = [f"<{edges[0]:g}"] + [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])] + [f">={edges[-1]:g}"]
    return np.asarray(names, dtype=object)[band]


def age_bands(age: np.ndarray) -> np.ndarray:
    """(n,) age band labels of :data:`AGE_BANDS` for ages in years."""
    bands = np.full(len(age), AGE_BANDS[-1][2], dtype=object)
    for low, high, label in reversed(AGE_BANDS):
        bands[(age >= low) & (age <= high)] = label
    return bands


def audited(frame: pl.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """:func:`subgroups` of an export read through ``schema``."""
    groups = {}
    if S.GENDER in frame.columns:
        groups["gender"] = frame[S.GENDER].to_numpy().astype(object)
    if S.AGE in frame.columns:
        groups["age_band"] = age_bands(frame[S.AGE].to_numpy())
    role_of = {column: role for role, column in schema.columns.items()}
    for name in schema.audit:
        column = ROLE_COLUMNS[role_of[name]] if name in role_of else name
        if column in (S.GENDER, S.AGE) or column not in frame.columns:
            continue
        values = frame[column]
        if name in schema.flags or column == S.SMS_RECEIVED:
            groups[name] = np.where(values.to_numpy() == 1, "yes", "no").astype(object)
        elif values.dtype.is_numeric():
            groups[name] = _quartiles(values.to_numpy().astype(float))
        else:
            groups[name] = _largest(values.cast(pl.String).to_numpy())
    return groups


def subgroups(frame: pl.DataFrame, schema: Schema | None = None) -> dict[str, np.ndarray]:
    """Each attribute's group label per row of the appointments ``frame``, (n,) strings; an export
    read through ``schema`` by its audited attributes (:func:`audited`)."""
    if schema is not None:
        return audited(frame, schema)
    age = frame[S.AGE].to_numpy()
    bands = np.full(len(age), AGE_BANDS[-1][2], dtype=object)
    for low, high, label in reversed(AGE_BANDS):
        bands[(age >= low) & (age <= high)] = label
    hood = frame[S.NEIGHBOURHOOD].to_numpy().astype(object)
    largest = frame[S.NEIGHBOURHOOD].value_counts(sort=True).head(TOP_NEIGHBOURHOODS)[S.NEIGHBOURHOOD].to_list()
    hood = np.where(np.isin(hood, largest), hood, "other")
    return {
        "gender": frame[S.GENDER].to_numpy().astype(object),
        "age_band": bands,
        "scholarship": np.where(frame[S.SCHOLARSHIP].to_numpy() == 1, "yes", "no"),
        "sms_received": np.where(frame[S.SMS_RECEIVED].to_numpy() == 1, "yes", "no"),
        "neighbourhood": hood,
    }


def fairness_table(y: np.ndarray, probability: np.ndarray, flagged: np.ndarray,
                   groups: dict[str, np.ndarray]) -> list[dict]:
    """One row per (attribute, group) with :data:`FAIRNESS_KEYS`."""
    y, flagged = np.asarray(y), np.asarray(flagged, bool)
    calls, no_shows = max(int(flagged.sum()), 1), max(int(y.sum()), 1)
    rows = []
    for attribute, labels in groups.items():
        for group in sorted(set(labels.tolist()), key=str):
            mask = labels == group
            yg, pg, fg = y[mask], probability[mask], flagged[mask]
            rows.append({
                "attribute": attribute, "group": str(group), "rows": int(mask.sum()),
                "no_show_rate": float(yg.mean()),
                "pr_auc": float(average_precision_score(yg, pg)) if 0 < yg.sum() < len(yg) else None,
                "calibration_gap": float(pg.mean() - yg.mean()),
                "flag_rate": float(fg.mean()),
                "call_share": float(fg.sum() / calls),
                "no_show_share": float(yg.sum() / no_shows),
                "recall": float(fg[yg == 1].mean()) if yg.sum() else None,
            })
    return rows


def findings(table: list[dict], overall_flag_rate: float) -> list[str]:
    """Sentences naming each group past a limit, with its size."""
    lines = []
    for row in table:
        name = f"{row['attribute']} = {row['group']} ({row['rows']:,} rows)"
        if abs(row["calibration_gap"]) > GAP_LIMIT:
            direction = "over" if row["calibration_gap"] > 0 else "under"
            lines.append(f"{name}: risk {direction}estimated by {abs(row['calibration_gap']):.3f} "
                         f"(predicted {row['no_show_rate'] + row['calibration_gap']:.3f}, observed {row['no_show_rate']:.3f})")
        ratio = row["flag_rate"] / overall_flag_rate if overall_flag_rate else 1.0
        if ratio > FLAG_RATIO_LIMIT or ratio < 1 / FLAG_RATIO_LIMIT:
            lines.append(f"{name}: flagged at {ratio:.2f}x the overall rate ({row['flag_rate']:.3f} vs "
                         f"{overall_flag_rate:.3f}); its no-show rate is {row['no_show_rate']:.3f}")
    return lines
