"""The model card: a short Markdown page beside every saved model (``<model>.card.md``) and in
``compare``'s output, saying what the model is for, what it learnt from, how well it does on rows it
did not learn from, for whom, and what it cannot do.

:func:`card_markdown` takes plain facts (so ``compare`` can describe its twins), :func:`model_card`
gathers them from a :class:`~noshow.model.TrainedModel`, and :func:`write_card` writes atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from noshow.files import atomic_path

if TYPE_CHECKING:
    from noshow.model import TrainedModel

CARD_SUFFIX = ".card.md"
# Metrics shown when present, in this order, with their labels.
CARD_METRICS = {"pr_auc": "PR AUC", "roc_auc": "ROC AUC", "f1": "F1", "precision": "precision",
                "recall": "recall", "ece": "ECE (calibrated)", "ece_uncalibrated": "ECE (uncalibrated)",
                "brier": "Brier (calibrated)", "brier_uncalibrated": "Brier (uncalibrated)",
                "threshold": "max-F1 threshold"}
KAGGLE_PLACE = "public clinics of Vitória, Espírito Santo, Brazil (the Kaggle file, April to June 2016)"
# SHA-256 of the Kaggle file, plain and gzipped (data/README.md): only then is the place known.
KAGGLE_SHA256 = ("9132d3e7d0246617df9041d3764f20ad6f08e7b0d9f0997fa254fc5e52eda27d",
                 "d478f30f6917f884e473d30628c2ba5bff6f5029b7c49157597f78f643c0a078")

INTENDED_USE = (
    "Prioritising reminders and support: deciding whom to phone, remind again, or offer help with "
    "transport or rebooking, in order of risk, within the staff time a clinic has.",
    "**Not** for denying, penalising, delaying or overbooking a patient's care without human review. "
    "A high score says the appointment resembles missed ones; it says nothing about why, and a call "
    "that helps the patient come is the intended response.",
)
LIMITATIONS = (
    "Learnt from one city's public clinics over about six weeks of 2016; other clinics, seasons or "
    "booking practices will differ: check calibration on your own recent appointments before relying "
    "on the percentages.",
    "Outcomes of earlier visits come only from the rows given (the file, or `--history`): a patient "
    "whose earlier visits are missing looks like a first-time patient.",
    "The file has no cause of absence, weather, distance or reminder content; the score cannot "
    "account for them.",
    "Reasons are the model's (occlusion against a typical training appointment), not causes: they "
    "say which parts of the record raise this score, not why the patient might not come.",
    "Calibration holds on average over rows like the validation rows; a subgroup can still be "
    "mis-calibrated (see the subgroup table where given).",
    "Measuring what a call does (`--holdout-share`) leaves a random share of flagged patients "
    "uncalled: do it only where the call is an addition to the clinic's usual care, not a part of "
    "it, with the clinic's approval and patients told, and never for patients a call is known to "
    "help; see docs/loop.md. Outcomes of called patients are not the untreated risk: retrain with "
    "`train --db`, which leaves them out.",
)
TIME_SPLIT_NOTE = ("The time split (most recent days held out) is the honest estimate for future "
                   "appointments.")


def card_path(model_path: str | Path) -> Path:
    """``model.npz`` -> ``model.card.md`` (beside the model)."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(path.suffix) + CARD_SUFFIX)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _metrics_table(metrics: dict[str, dict]) -> list[str]:
    """Markdown table: one row per metric of :data:`CARD_METRICS` present, one column per model."""
    names = list(metrics)
    keys = [k for k in CARD_METRICS if any(k in m for m in metrics.values())]
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {CARD_METRICS[k]} | " + " | ".join(_fmt(metrics[n].get(k, "")) for n in names) + " |" for k in keys]
    return lines


def _subgroup_table(rows: list[dict]) -> list[str]:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


def _split_note(split: str, evaluated_on: str) -> str:
    note = f"Metrics on the **{evaluated_on}** rows of the **{split}** split. "
    if split == "time":
        return note + TIME_SPLIT_NOTE
    return note + (f"The {split} split mixes days, so this is not the estimate for future appointments. "
                   f"{TIME_SPLIT_NOTE} Run `noshow compare --split time` for it.")


def card_markdown(title: str, model: str, data: dict, split: str, evaluated_on: str,
                  metrics: dict[str, dict], subgroups: list[dict] | None = None,
                  notes: list[str] | tuple[str, ...] = (), columns: list[str] | None = None) -> str:
    """The card as Markdown.

    Parameters
    ----------
    title : heading, e.g. ``"noshow model: model.npz"``.
    model : one line describing the model (network, members, calibration).
    data : facts about the training data: ``source``, ``rows``, ``synthetic`` (bool) and optionally
        ``sha256``, ``train_days``/``val_days``/``test_days`` ([first, last] ISO dates), ``n_train``,
        ``n_val``, ``n_test``.
    split : the split's kind (``random``, ``time``, ``patient``, ...).
    evaluated_on : which rows the metrics come from (``test``, ``validation``).
    metrics : model label -> metric name -> value (names as in metrics.json; :data:`CARD_METRICS`).
    subgroups : optional fairness rows (dicts with the same keys), shown as a table.
    notes : extra sentences for the metrics section.
    columns : lines naming the file columns the model reads, shown under "Columns used".
    """
    place = ("synthetic appointments (made up; no real patient)" if data.get("synthetic") else KAGGLE_PLACE
             if data.get("sha256") in KAGGLE_SHA256 else "not the Kaggle file: as its provider describes it")
    lines = [f"# {title}", "", f"Model: {model}", "", "## Intended use", ""]
    lines += [f"- {line}" for line in INTENDED_USE]
    lines += ["", "## Training data", "", f"- Source: `{data.get('source', '?')}`"
              + (f" (SHA-256 `{data['sha256'][:16]}…`)" if data.get("sha256") else ""),
              f"- Place and period: {place}", f"- Rows in the file: {_count(data.get('rows', '?'))}"]
    for part, label in (("train", "training"), ("val", "validation"), ("test", "test")):
        if f"n_{part}" in data and (data[f"n_{part}"] or part != "test"):
            days = data.get(f"{part}_days")
            span = f", appointment days {days[0]} to {days[1]}" if days else ""
            lines.append(f"- {label.capitalize()} rows: {_count(data[f'n_{part}'])}{span}")
    if data.get("n_test") == 0:
        lines.append("- No test rows held out: a model for use learns from every row but the validation "
                     "rows, which choose early stopping, the threshold and the calibration map.")
    if columns:
        lines += ["", "## Columns used", ""] + [f"- {line}" for line in columns]
    lines += ["", "## Metrics", "", _split_note(split, evaluated_on), *[f"{n}" for n in notes], ""]
    lines += _metrics_table(metrics) if metrics else ["(no metrics recorded)"]
    lines += ["", "## Subgroups", ""]
    lines += _subgroup_table(subgroups) if subgroups else [
        "No subgroup table with this card: `noshow compare` audits calibration, flag rates and recall "
        "per gender, age band, scholarship, SMS and neighbourhood on held-out rows."]
    lines += ["", "## Known limitations", ""] + [f"- {line}" for line in LIMITATIONS]
    return "\n".join(lines) + "\n"


def _description(model: "TrainedModel") -> str:
    meta, config = model.metadata, model.config
    return (f"{meta.get('trained_with', '?')} twin, {config.members} network(s) of hidden layers "
            f"{','.join(map(str, config.hidden))} ({config.activation}), {config.dtype}; "
            f"calibration {model.calibrator.method}; max-F1 threshold {model.threshold:.4f} "
            f"on calibrated probabilities")


def columns_used(model: "TrainedModel") -> list[str]:
    """What the model reads of a file, role by role (the Kaggle layout's columns, or its schema's),
    and the features left out because the file had no column for them."""
    schema = model.schema
    if schema is None:
        from noshow.data import schema as S

        return [f"the Kaggle layout: {', '.join(f'`{c}`' for c in S.ALL_COLUMNS)}"]
    lines = [f"schema {schema.name!r}, roles: " + ", ".join(f"{role} `{column}`" for role, column in schema.columns.items())]
    for kind, names in (("flags", schema.flags), ("categorical", schema.categorical), ("numeric", schema.numeric)):
        if names:
            lines.append(f"{kind} covariates: {', '.join(f'`{c}`' for c in names)}")
    absent = model.pipeline.spec.absent
    if absent:
        lines.append(f"left out, no column for them: {', '.join(absent)}")
    return lines


def _validation_metrics(model: "TrainedModel") -> dict[str, float]:
    training = model.metadata.get("training", {})
    metrics = {"pr_auc": training.get("val_pr_auc"), "ece": training.get("val_ece"),
               "ece_uncalibrated": training.get("val_ece_uncalibrated"), "threshold": model.threshold}
    return {m: v for m, v in metrics.items() if v is not None}


def model_card(model: "TrainedModel", name: str, subgroups: list[dict] | None = None) -> str:
    """The card of a saved model, from its own metadata (validation metrics: it holds out no test)."""
    data = model.metadata.get("data", {})
    held_out = data.get("held_out_test", True)
    notes = [] if held_out else [
        "These rows also chose early stopping, the threshold and the calibration map, so the numbers "
        "are somewhat optimistic; `noshow compare` gives test-set estimates with the same settings."]
    training = model.metadata.get("training", {})
    if training.get("refit"):
        notes.append(f"The networks were then refitted on the training and validation rows for the epoch counts "
                     f"early stopping chose ({', '.join(map(str, training.get('refit_epochs', [])))}); these "
                     f"numbers, the threshold and the calibration map are those of the networks before the refit.")
    return card_markdown(f"noshow model card: {name}", _description(model), data, data.get("split", "?"),
                         "validation", {"validation": _validation_metrics(model)}, subgroups, notes,
                         columns_used(model))


def card_facts(model: "TrainedModel", name: str) -> dict:
    """The card's facts as data (the service's ``GET /model``): the model, its training data and
    split, and its metrics on the validation rows of that split (named by :data:`CARD_METRICS`)."""
    data = model.metadata.get("data", {})
    return {"name": name, "model": _description(model), "trained_with": model.metadata.get("trained_with"),
            "format_version": model.metadata.get("format_version"), "versions": model.metadata.get("versions", {}),
            "calibration": model.calibrator.method, "threshold": model.threshold,
            "data": {k: v for k, v in data.items()},
            "metrics": {"split": data.get("split"), "rows": "validation", **_validation_metrics(model)},
            "intended_use": list(INTENDED_USE)}


def write_card(model_or_text: "TrainedModel | str", path: str | Path, subgroups: list[dict] | None = None) -> Path:
    """Write a card (Markdown text, or a model's :func:`model_card`) to ``path`` atomically."""
    path = Path(path)
    text = model_or_text if isinstance(model_or_text, str) else model_card(
        model_or_text, path.name.removesuffix(CARD_SUFFIX), subgroups)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
