"""The comparison report: figures (PNG), ``metrics.json``, a self-contained ``report.html`` (figures
embedded as base64, opens offline) and ``report.pdf`` printed from that same HTML, plus the console
summary table.

The report's content is built once, as data (:func:`content`); one Jinja2 template
(``templates/report.html.j2``) lays it out, with print CSS for A4, and WeasyPrint prints the PDF
from the HTML, so the two cannot disagree.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from noshow.errors import NoshowError
from noshow.files import atomic_path, write_json
from noshow.stats.metrics import CONFUSION
from noshow.training import BACKENDS as TWINS

METRICS_FILE = "metrics.json"  # the report's data; its presence marks a folder as a report

LABELS = {"numpy": "NumPy twin", "torch": "PyTorch twin", "logistic_regression": "logistic regression",
          "gradient_boosting": "gradient-boosted trees", "always_show": "always show",
          "bayes_limit": "Bayes limit (true probabilities)",
          "no_show_rule": "rule without a model (2+ earlier no-shows or booked 15+ days ahead)"}
# The results as two tables that fit A4: how well each model ranks and how good its probabilities are,
# then what it does at its threshold (chosen on validation rows). Keys of metrics.json, with their
# headings.
RANKING_METRICS = {"pr_auc": "PR AUC", "roc_auc": "ROC AUC", "brier": "Brier score"}
THRESHOLD_METRICS = {"threshold": "threshold", "f1": "F1", "precision": "precision", "recall": "recall",
                     "accuracy": "accuracy", "f1_at_0_5": "F1 at 0.5"}
COST_HEADINGS = {"train_seconds": "training (s)", "epochs": "epochs (best)", "seconds_per_epoch": "s per epoch",
                 "seconds_to_95pct": "s to 95% of best val PR AUC", "import_rss_mb": "MB after imports",
                 "peak_rss_mb": "peak MB"}
FIGURES = {
    "pr_curves.png": "Precision-recall curves on the test set",
    "roc_curves.png": "ROC curves on the test set",
    "confusion_numpy.png": "Confusion matrix, NumPy twin (test set, validation threshold)",
    "confusion_torch.png": "Confusion matrix, PyTorch twin (test set, validation threshold)",
    "training_curves.png": "Training loss and validation PR AUC, per epoch and per second (first seed)",
    "cost.png": "Memory and time of each twin, measured the same way",
    "calibration.png": "Calibration on the test set, before (dashed) and after calibration",
    "decision_curve.png": "Decision curve: net benefit of calling everyone above a risk threshold",
    "rolling_origin.png": "Performance over time: each of the last appointment days scored by a model of the days before",
}
CARD_FILE = "model_card.md"
KEEP_ROWS = 30  # a printed table of up to this many rows is kept on one page
HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
TEMPLATE = "report.html.j2"
CURVE_SKIP = ("y_test", "always_show", "no_show_rule")  # constant or 0/1 scores have no curve


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
    _plt().close(fig)


def figure_curves(curves: dict, out: Path) -> None:
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _plt()
    y = curves["y_test"]
    for filename, kind in (("pr_curves.png", "pr"), ("roc_curves.png", "roc")):
        fig, ax = plt.subplots(figsize=(6.4, 5))
        for name, p in curves.items():
            if name in CURVE_SKIP or p is None or name.endswith("_uncalibrated"):
                continue
            if kind == "pr":
                precision, recall, _ = precision_recall_curve(y, p)
                ax.plot(recall, precision, label=LABELS.get(name, name))
            else:
                fpr, tpr, _ = roc_curve(y, p)
                ax.plot(fpr, tpr, label=LABELS.get(name, name))
        if kind == "pr":
            ax.axhline(y.mean(), color="grey", ls=":", label=f"chance ({y.mean():.3f})")
            ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1))
        else:
            ax.plot([0, 1], [0, 1], color="grey", ls=":", label="chance")
            ax.set(xlabel="false positive rate", ylabel="true positive rate")
        ax.legend(fontsize=8)
        _save(fig, out / filename)


def figure_confusions(metrics: dict, out: Path) -> None:
    plt = _plt()
    for twin in TWINS:
        matrix = np.array(metrics["models"][twin][CONFUSION])
        fig, ax = plt.subplots(figsize=(4.2, 3.8))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:,}", ha="center", va="center",
                    color="white" if value > matrix.max() / 2 else "black")
        ax.set_xticks([0, 1], ["show", "no-show"])
        ax.set_yticks([0, 1], ["show", "no-show"])
        threshold = metrics["models"][twin]["threshold"]
        ax.set(xlabel="predicted", ylabel="actual", title=f"{LABELS[twin]} (threshold {threshold:.3f})")
        _save(fig, out / f"confusion_{twin}.png")


def figure_training(metrics: dict, out: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for twin in TWINS:
        history = metrics["models"][twin]["history"]
        epochs = [h["epoch"] for h in history]
        seconds = [h["seconds"] for h in history]
        for col, x, xlabel in ((0, epochs, "epoch"), (1, seconds, "seconds")):
            axes[0, col].plot(x, [h["loss"] for h in history], marker=".", label=LABELS[twin])
            axes[1, col].plot(x, [h["val_pr_auc"] for h in history], marker=".", label=LABELS[twin])
            axes[0, col].set(xlabel=xlabel, ylabel="training loss")
            axes[1, col].set(xlabel=xlabel, ylabel="validation PR AUC")
    for ax in axes.flat:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, out / "training_curves.png")


def figure_cost(metrics: dict, out: Path) -> None:
    plt = _plt()
    twins = TWINS
    m = metrics["models"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    x = np.arange(2)
    axes[0].bar(x - 0.2, [m[t]["import_rss_mb"] for t in twins], 0.4, label="after imports")
    axes[0].bar(x + 0.2, [m[t]["peak_rss_mb"] for t in twins], 0.4, label="peak (training)")
    axes[0].set(ylabel="resident memory (MB)", title="memory of each training process")
    axes[1].bar(x, [m[t]["seconds_per_epoch"] for t in twins], color="tab:green")
    axes[1].set(ylabel="seconds", title="seconds per epoch")
    axes[2].bar(x - 0.2, [m[t]["train_seconds"] for t in twins], 0.4, label="training")
    axes[2].bar(x + 0.2, [m[t]["seconds_to_95pct"] for t in twins], 0.4, label="to 95% of best val PR AUC")
    axes[2].set(ylabel="seconds", title="time to train")
    for ax in axes:
        ax.set_xticks(x, [LABELS[t] for t in twins])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out / "cost.png")


def figure_calibration(curves: dict, out: Path) -> None:
    from sklearn.calibration import calibration_curve

    plt = _plt()
    y = curves["y_test"]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in curves.items():
        if name in CURVE_SKIP or p is None:
            continue
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
        before = name.endswith("_uncalibrated")
        label = LABELS.get(name.removesuffix("_uncalibrated"), name) + (" (uncalibrated)" if before else "")
        ax.plot(predicted, observed, marker="o", ls="--" if before else "-", alpha=0.6 if before else 1, label=label)
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfectly calibrated")
    ax.set(xlabel="mean predicted probability", ylabel="observed no-show rate")
    ax.legend(fontsize=8)
    _save(fig, out / "calibration.png")


def figure_decision_curve(metrics: dict, out: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    curves = metrics["decision_curve"]
    for name, curve in curves.items():
        ax.plot(curve["threshold"], curve["net_benefit"], label=LABELS.get(name, name))
    first = next(iter(curves.values()))
    ax.plot(first["threshold"], first["treat_all"], color="grey", ls="--", label="call everyone")
    ax.axhline(0, color="black", lw=0.8, label="call no one")
    top = max(max(c["net_benefit"]) for c in curves.values())
    ax.set(xlabel="threshold probability (the risk at which a call is worth its cost)",
           ylabel="net benefit (no-shows reached per appointment)", ylim=(-0.02, top * 1.3 + 0.01))
    ax.legend(fontsize=8)
    _save(fig, out / "decision_curve.png")


# The twins' days nearly coincide: a solid line with dots under a dashed one with crosses shows both.
ROLLING_STYLE = {"numpy": {"marker": "o", "lw": 2.5, "alpha": 0.6}, "torch": {"marker": "x", "ls": "--"}}


def figure_rolling(metrics: dict, out: Path) -> None:
    """Each origin day's PR AUC, ROC AUC, calibration-in-the-large and call-list precision, per twin."""
    plt = _plt()
    panels = (("pr_auc", "PR AUC"), ("roc_auc", "ROC AUC"),
              ("calibration_in_the_large", "calibration-in-the-large (0: right on average)"),
              ("call_list_precision", "precision of the 10% call list"))
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex=True)
    for twin, rows in metrics["rolling_origin"]["twins"].items():
        days = [r["day"][5:] for r in rows]
        for ax, (key, title) in zip(axes.flat, panels):
            ax.plot(days, [np.nan if r[key] is None else r[key] for r in rows], label=LABELS[twin],
                    **ROLLING_STYLE[twin])
            ax.set_title(title, fontsize=10)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    axes[1, 0].axhline(0, color="grey", ls=":")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out / "rolling_origin.png")


# --------------------------------------------------------------------------------------------------
# The report's content, once, as data: the template (templates/report.html.j2) lays it out, for the
# screen and, through WeasyPrint, for A4 paper.


def _fmt(model: dict, key: str) -> str:
    """``model[key]`` as text, with ± its standard deviation over seeds where it varies."""
    value = model.get(key)
    if value is None:
        return "–"
    digits = 1 if key == "epochs" or key.endswith("_mb") else 4
    text = f"{value:.{digits}f}"
    spread = model.get("std", {}).get(key)
    if spread:  # 0 for what one process measures once, or a deterministic model
        text += f" ±\u00a0{spread:.{digits}f}"  # wraps, if at all, before the ±
    return text


def _number(value, digits: int = 3, signed: bool = False) -> str:
    return "–" if value is None else f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list], caption: str | None = None) -> dict:
    """A table of text cells; ``keep``: short enough to keep on one page when printed."""
    return {"header": header, "rows": [[str(c) for c in row] for row in rows], "caption": caption,
            "keep": len(rows) <= KEEP_ROWS}


def _interval(model: dict, key: str) -> str:
    low, high = model["ci95"][key]
    return f"{low:.3f}–\u2060{high:.3f}"  # a word joiner: never wrapped at the dash


def ranking_table(metrics: dict) -> dict:
    """One row per model: its ranking and probabilities (mean ± std over seeds), no threshold needed."""
    rows = [[LABELS.get(name, name), *[_fmt(model, k) for k in RANKING_METRICS], _interval(model, "pr_auc")]
            for name, model in metrics["models"].items()]
    return _table(["model", *RANKING_METRICS.values(), "PR AUC 95% interval"], rows,
                  "Ranking and probabilities (no threshold)")


def threshold_table(metrics: dict) -> dict:
    """One row per model: its decisions at its own threshold, chosen on validation rows."""
    rows = [[LABELS.get(name, name), *[_fmt(model, k) for k in THRESHOLD_METRICS], _interval(model, "f1"),
             str(model[CONFUSION])] for name, model in metrics["models"].items()]
    return _table(["model", *THRESHOLD_METRICS.values(), "F1 95% interval", "confusion [[TN, FP], [FN, TP]]"],
                  rows, "At the threshold chosen on validation rows")


def cost_table(metrics: dict) -> dict:
    return _table(["twin", *COST_HEADINGS.values()],
                  [[LABELS[t], *(_fmt(metrics["models"][t], k) for k in COST_HEADINGS)] for t in TWINS])


def reported_table(metrics: dict) -> dict:
    rows = [[LABELS[twin], f"{r['accuracy']:.4f}", f"{r['f1']:.4f}", f"{r['pr_auc']:.4f}", f"{r['peak_rss_mb']:.2f}",
             str(r["confusion_matrix"])] for twin, r in metrics["reported"].items()]
    return _table(["original study (reported, not rerun)", "accuracy", "F1", "PR AUC", "memory (MB)", "confusion"], rows)


def calibration_table(metrics: dict) -> dict:
    rows = []
    for twin in TWINS:
        m = metrics["models"][twin]
        rows.append([LABELS[twin], f"{m['ece_uncalibrated']:.4f} → {m['ece']:.4f}",
                     f"{m['brier_uncalibrated']:.4f} → {m['brier']:.4f}",
                     f"{m['pr_auc_uncalibrated']:.4f} → {m['pr_auc']:.4f}"])
    return _table(["twin", "ECE before → after", "Brier before → after", "PR AUC before → after"], rows,
                  "What the map fitted on validation rows changed on the test rows")


def _with_interval(fit: dict, key: str) -> str:
    if fit[key] is None:
        return "–"
    low, high = fit["ci95"][key]
    return f"{fit[key]:.3f} ({low:.3f}\u00a0to\u00a0{high:.3f})"  # wraps, if at all, before the interval


def calibration_fit_table(metrics: dict) -> dict:
    """Calibration-in-the-large and slope of each twin on all test rows, with 95% intervals."""
    rows = [[LABELS[twin], f"{fit['overall']['rows']:,}", f"{fit['overall']['no_shows']:,}",
             _with_interval(fit["overall"], "intercept"), _with_interval(fit["overall"], "slope")]
            for twin, fit in metrics["calibration_fit"].items()]
    return _table(["twin", "rows", "no-shows", "calibration-in-the-large (95% interval)",
                   "calibration slope (95% interval)"], rows, "All test rows")


def calibration_subgroup_table(metrics: dict) -> dict:
    """Both twins' calibration-in-the-large and slope in each audited subgroup, side by side."""
    fits = metrics["calibration_fit"]
    twins = list(fits)
    header = ["attribute", "group", "rows", "no-shows"]
    for twin in twins:
        header += [f"{LABELS[twin]}: in the large", f"{LABELS[twin]}: slope"]
    rows = []
    for i, first in enumerate(fits[twins[0]]["subgroups"]):
        row = [first["attribute"], first["group"], f"{first['rows']:,}", f"{first['no_shows']:,}"]
        for twin in twins:
            fit = fits[twin]["subgroups"][i]
            row += [_with_interval(fit, "intercept"), _with_interval(fit, "slope")]
        rows.append(row)
    return _table(header, rows, "By audited subgroup (95% intervals; – where a group has fewer than "
                  f"{metrics['calibration_fit_min_class']} no-shows or shows)")


def rolling_table(metrics: dict, twin: str) -> dict:
    rows = [[r["day"], f"{r['train_rows']:,}", f"{r['rows']:,}", _number(r["no_show_rate"]), _number(r["pr_auc"], 4),
             _number(r["roc_auc"], 4), _number(r["calibration_in_the_large"], 3, signed=True),
             _number(r["call_list_precision"])] for r in metrics["rolling_origin"]["twins"][twin]]
    return _table(["day scored", "training rows", "rows", "no-show rate", "PR AUC", "ROC AUC",
                   "calibration-in-the-large", "precision of the 10% call list"], rows, LABELS[twin])


def decisions_table(metrics: dict) -> dict:
    shares = [row["share"] for row in next(iter(metrics["decisions"].values()))]
    rows = [[LABELS.get(name, name), *[f"{r['precision']:.3f} / {r['recall']:.3f} / {r['lift']:.2f}" for r in lists]]
            for name, lists in metrics["decisions"].items()]
    return _table(["call list", *[f"{s:.0%} of each day: precision / recall / lift" for s in shares]], rows)


def fairness_table_of(metrics: dict, twin: str) -> dict:
    rows = [[r["attribute"], r["group"], f"{r['rows']:,}", f"{r['no_show_rate']:.3f}", _number(r["pr_auc"]),
             f"{r['calibration_gap']:+.3f}", f"{r['flag_rate']:.3f}", f"{r['call_share']:.3f}",
             f"{r['no_show_share']:.3f}", _number(r["recall"])] for r in metrics["fairness"][twin]]
    return _table(["attribute", "group", "rows", "no-show rate", "PR AUC", "calibration gap", "flag rate",
                   "call share", "no-show share", "recall"], rows, f"{LABELS[twin]}: each audited group")


def interpretation(metrics: dict) -> list[dict]:
    """Plain-language findings, generated from the numbers: each a bold ``lead`` and its ``text``."""
    m = metrics["models"]
    numpy_m, torch_m = m["numpy"], m["torch"]
    agree = metrics["twin_agreement"]
    faster, slower = ("numpy", "torch") if numpy_m["seconds_per_epoch"] <= torch_m["seconds_per_epoch"] else ("torch", "numpy")
    speedup = m[slower]["seconds_per_epoch"] / m[faster]["seconds_per_epoch"]
    found = [
        ("The twins agree.",
         f"Mean test PR AUC {numpy_m['pr_auc']:.4f} (NumPy) vs {torch_m['pr_auc']:.4f} (PyTorch), a difference of "
         f"{agree['pr_auc_difference']:.4f}; F1 differs by {agree['f1_difference']:.4f}. They start from identical "
         f"weights and see identical batches; their probabilities differ by {agree['mean_abs_probability_difference']:.4f} "
         f"on average (max {agree['max_abs_probability_difference']:.4f}) only because dropout masks come from different "
         "random generators (with dropout off, the tests show agreement to 1e-9 in float64)."),
        ("Speed.",
         f"The {LABELS[faster]} is {speedup:.1f}x faster per epoch ({m[faster]['seconds_per_epoch']:.3f} s vs "
         f"{m[slower]['seconds_per_epoch']:.3f} s, {metrics['machine']['threads']} threads each). For a network this "
         "small, per-batch overhead (autograd bookkeeping, operator dispatch) outweighs the arithmetic, "
         "and NumPy has less of it."),
        ("Memory.",
         f"Peak RSS {numpy_m['peak_rss_mb']:.0f} MB (NumPy) vs {torch_m['peak_rss_mb']:.0f} MB (PyTorch). Importing the "
         f"libraries alone takes {numpy_m['import_rss_mb']:.0f} MB vs {torch_m['import_rss_mb']:.0f} MB, so "
         f"{torch_m['import_rss_mb'] - numpy_m['import_rss_mb']:.0f} MB of the difference is PyTorch's own code and "
         f"libraries; training itself adds {numpy_m['peak_rss_mb'] - numpy_m['import_rss_mb']:.0f} MB vs "
         f"{torch_m['peak_rss_mb'] - torch_m['import_rss_mb']:.0f} MB."),
    ]
    best_ref = max(("logistic_regression", "gradient_boosting"), key=lambda k: m[k]["pr_auc"])
    found.append(("Against references.",
                  f"Best reference: {LABELS[best_ref]} at PR AUC {m[best_ref]['pr_auc']:.4f}, F1 {m[best_ref]['f1']:.4f}; "
                  f"always-show has PR AUC {m['always_show']['pr_auc']:.4f} and F1 0."))
    if "bayes_limit" in m:
        found.append(("Bayes limit.",
                      f"The true probabilities score PR AUC {m['bayes_limit']['pr_auc']:.4f}; the twins are "
                      f"{m['bayes_limit']['pr_auc'] - numpy_m['pr_auc']:.4f} and "
                      f"{m['bayes_limit']['pr_auc'] - torch_m['pr_auc']:.4f} below it."))
    found.append(("Why the original study's F1 collapsed.",
                  f"At threshold 0.5 the NumPy twin's F1 is {numpy_m['f1_at_0_5']:.4f}; at the threshold chosen on "
                  f"validation ({numpy_m['threshold']:.3f}) it is {numpy_m['f1']:.4f}. With "
                  f"{metrics['data']['positive_rate']:.1%} positives, the threshold, not the framework, decides F1; "
                  "PR AUC, which needs no threshold, is the fair measure of the ranking."))
    fit = metrics["calibration_fit"]["numpy"]["overall"]
    if fit["slope"] is not None:
        found.append(("Calibration on new rows.",
                      f"The NumPy twin's calibration-in-the-large is {_with_interval(fit, 'intercept')} and its slope "
                      f"{_with_interval(fit, 'slope')} (ideal: 0 and 1); per subgroup in the calibration section."))
    return [{"lead": lead, "text": text} for lead, text in found]


def _figure(name: str, half: bool = False) -> dict:
    """A figure of the report; ``half``: half the page's width, two side by side."""
    return {"name": name, "caption": FIGURES[name], "half": half}


def content(metrics: dict) -> dict:
    """Everything the report says, as data: a header and sections, each with paragraphs, bullet
    lists, tables (header and rows of text) and figures (file names), in reading order."""
    d, mach = metrics["data"], metrics["machine"]
    source = ("synthetic data: " if d["synthetic"] else "") + d["source"]
    rolling = metrics["rolling_origin"]
    header = [
        f"Data: {source} ({d['rows']:,} rows, no-show rate {d['positive_rate']:.4f}, sha256 {d['sha256'][:16]}…).",
        f"Split: {d['split']} (seed {d['split_seed']}): {d['n_train']:,} train, {d['n_val']:,} validation, "
        f"{d['n_test']:,} test. Seeds: {d['seeds']}. Features: {d['n_features']}.",
        f"Machine: {mach['platform']}, {mach['cpus']} CPUs, {mach['threads']} threads per twin"
        f"{' (twins trained side by side)' if mach.get('twins_side_by_side') else ''}; Python {mach['python']}, "
        f"NumPy {mach['numpy']}, PyTorch {mach['torch']}, scikit-learn {mach['scikit-learn']}.",
        "Thresholds and calibration were chosen on validation data (maximum F1) and applied unchanged to the test "
        "set; every number below is on the test set. With several seeds: mean ± standard deviation.",
        ("This is the time split: the most recent days are held out, so these numbers are the honest estimate of how "
         "the model meets future appointments." if d["split"] == "time" else
         "This split mixes days; for how the model meets future appointments, read noshow compare --split time (the "
         "most recent days held out) and the performance over time below."),
    ]
    sections = [
        {"title": "Findings", "findings": interpretation(metrics)},
        {"title": "Results", "tables": [ranking_table(metrics), threshold_table(metrics)],
         "paragraphs": ["Intervals: percentile bootstrap over the test rows (200 resamples), averaged over seeds."],
         "figures": [_figure("pr_curves.png"), _figure("roc_curves.png"),
                     _figure("confusion_numpy.png", half=True), _figure("confusion_torch.png", half=True)]},
        {"title": "Calibration", "paragraphs": [
            "Each twin's calibration map is fitted on validation rows; ECE with 10 equal-mass bins.",
            "Calibration-in-the-large is a in logit P(no-show) = a + logit(p), the slope held at 1: 0 when the "
            "average risk is right, below 0 when risk is over-stated. The calibration slope is b in logit P = a' + "
            "b·logit(p): 1 when the risks spread as they should, below 1 when they are too extreme, above 1 when "
            "too timid. Both by logistic recalibration on the test rows (seed 0's calibrated probabilities), with "
            "percentile bootstrap 95% intervals (200 resamples)."],
         "tables": [calibration_table(metrics), calibration_fit_table(metrics), calibration_subgroup_table(metrics)],
         "figures": [_figure("calibration.png")]},
        {"title": "Performance over time", "paragraphs": [
            f"Rolling origin over the last {len(next(iter(rolling['twins'].values())))} appointment days: for each day, "
            "a network is trained on every earlier day (the latest tenth of them held out for early stopping and "
            "calibration) and scores that day alone, as a clinic retraining each evening scores the next morning. "
            "The first origin's network trains from its initial weights; each later one continues from the one "
            f"before for {rolling['update_epochs']} epoch(s) over all its earlier days, and its calibration map is "
            "fitted afresh. One network per twin (the run's settings otherwise), so these numbers sit a little "
            "below the averaged model's."],
         "tables": [rolling_table(metrics, t) for t in rolling["twins"]], "figures": [_figure("rolling_origin.png")]},
        {"title": "Decisions: who to call", "paragraphs": [
            "Each day's highest calibrated risks, as noshow predict --call-share flags them; precision = share of the "
            "called who would have missed, recall = share of all no-shows called, lift = precision over the no-show "
            f"rate ({d['positive_rate']:.3f}). The rule without a model is what a clinic can do from its own "
            "records; the network has to beat it."],
         "tables": [decisions_table(metrics)], "figures": [_figure("decision_curve.png")]},
        {"title": "Fairness audit", "paragraphs": [
            f"The call list audited: {metrics.get('fairness_call_share', 0.1):.0%} of each day's appointments, highest "
            "calibrated risk first. Calibration gap = mean predicted minus observed no-show rate; call share against "
            "no-show share says whether a group gets its part of the calls."],
         "subsections": [{"title": LABELS[twin], "bullets": metrics["fairness_findings"][twin] or ["none"],
                          "bullets_lead": "Findings (|gap| > 0.05, or flag rate over 2x or under 0.5x the overall rate):",
                          "tables": [fairness_table_of(metrics, twin)]} for twin in metrics["fairness"]]},
        {"title": "Cost (each twin in its own fresh process, same thread count)", "tables": [cost_table(metrics)],
         "figures": [_figure("training_curves.png"), _figure("cost.png")]},
        {"title": "The original study, for reference", "tables": [reported_table(metrics)], "paragraphs": [
            "Those figures came from different splits and settings for each network, a 0.5 threshold for NumPy, and "
            "memory measured by different means; they are quoted, not reproduced."]},
        {"title": "Settings", "tables": [_table(["setting", "value"],
                                                [[k, json.dumps(v)] for k, v in metrics["config"].items()])]},
    ]
    return {"title": "noshow: NumPy twin vs PyTorch twin", "header": header, "sections": sections}


def render_html(report: dict, image) -> str:
    """The report's HTML from :func:`content`'s data; ``image(name)`` gives each figure's src."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("noshow.evaluation", "templates"),
                                     autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template(TEMPLATE).render(report=report, image=image)


def write_pdf(page: str, path: Path) -> None:
    """Print the report's HTML ``page`` to an A4 PDF at ``path`` with WeasyPrint (the template's print
    CSS sets the page)."""
    try:
        import weasyprint
    except OSError as exc:  # the wheel is there, its system libraries (Pango) are not
        raise NoshowError(f"{path}: WeasyPrint cannot load Pango to print the PDF ({exc}); install the "
                          "system's Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0)") from None
    weasyprint.HTML(string=page).write_pdf(path)


def write_report(metrics: dict, curves: dict, out: Path) -> list[Path]:
    """Write every figure, metrics.json, report.html, report.pdf, the model card and tripod.md into
    ``out``; return the paths."""
    from noshow.evaluation.tripod import TRIPOD_FILE, tripod_markdown

    out.mkdir(parents=True, exist_ok=True)
    figure_curves(curves, out)
    figure_confusions(metrics, out)
    figure_training(metrics, out)
    figure_cost(metrics, out)
    figure_calibration(curves, out)
    figure_decision_curve(metrics, out)
    figure_rolling(metrics, out)
    with atomic_path(out / CARD_FILE) as tmp:
        tmp.write_text(model_card(metrics))
    with atomic_path(out / TRIPOD_FILE) as tmp:
        tmp.write_text(tripod_markdown(metrics))
    write_json(out / METRICS_FILE, metrics)

    def embedded(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode((out / name).read_bytes()).decode()

    page = render_html(content(metrics), embedded)
    with atomic_path(out / HTML_FILE) as tmp:
        tmp.write_text(page)
    with atomic_path(out / PDF_FILE) as tmp:
        write_pdf(page, tmp)
    return [out / n for n in (METRICS_FILE, HTML_FILE, PDF_FILE, CARD_FILE, TRIPOD_FILE, *FIGURES)]


def model_card(metrics: dict) -> str:
    """The model card of the models this comparison trained (the NumPy twin's subgroup table)."""
    from noshow.clinic.card import card_markdown

    d, config = metrics["data"], metrics["config"]
    model = (f"multilayer perceptron {tuple(config['hidden'])}, {config['activation']}, dropout {config['dropout']}, "
             f"{config['members']} network(s) averaged, calibrated on validation rows; NumPy and PyTorch twins")
    chosen = {LABELS[t]: metrics["models"][t] for t in TWINS}
    chosen[LABELS["gradient_boosting"]] = metrics["models"]["gradient_boosting"]
    chosen[LABELS["no_show_rule"]] = metrics["models"]["no_show_rule"]
    return card_markdown("noshow model card (comparison run)", model, d, d["split"], "test", chosen,
                         subgroups=metrics["fairness"]["numpy"])


def console_summary(metrics: dict) -> str:
    """A fixed-width summary table for the terminal."""
    keys = ("pr_auc", "roc_auc", "f1", "precision", "recall", "threshold", "f1_at_0_5")
    lines = [f"{'model':<26}" + "".join(f"{k:>11}" for k in keys)]
    for name, model in metrics["models"].items():
        lines.append(f"{LABELS.get(name, name):<26}" + "".join(f"{model[k]:>11.4f}" for k in keys))
    n, t = metrics["models"]["numpy"], metrics["models"]["torch"]
    lines.append("")
    lines.append(f"{'cost':<26}{'s/epoch':>11}{'train s':>11}{'import MB':>11}{'peak MB':>11}")
    for name, model in (("numpy", n), ("torch", t)):
        lines.append(f"{LABELS[name]:<26}{model['seconds_per_epoch']:>11.3f}{model['train_seconds']:>11.1f}"
                     f"{model['import_rss_mb']:>11.0f}{model['peak_rss_mb']:>11.0f}")
    return "\n".join(lines)
