"""The comparison report: figures (PNG), ``metrics.json``, ``report.md`` and a self-contained
``report.html`` (figures embedded as base64, opens offline), plus the console summary table."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from noshow.files import atomic_path, write_json
from noshow.evaluation.metrics import CONFUSION
from noshow.training import BACKENDS as TWINS

METRICS_FILE = "metrics.json"  # the report's data; its presence marks a folder as a report

LABELS = {"numpy": "NumPy twin", "torch": "PyTorch twin", "logistic_regression": "logistic regression",
          "gradient_boosting": "gradient-boosted trees", "always_show": "always show",
          "bayes_limit": "Bayes limit (true probabilities)",
          "no_show_rule": "rule without a model (2+ earlier no-shows or booked 15+ days ahead)"}
TABLE_METRICS = ("pr_auc", "roc_auc", "f1", "precision", "recall", "accuracy", "brier", "threshold", "f1_at_0_5")
FIGURES = {
    "pr_curves.png": "Precision-recall curves on the test set",
    "roc_curves.png": "ROC curves on the test set",
    "confusion_numpy.png": "Confusion matrix, NumPy twin (test set, validation threshold)",
    "confusion_torch.png": "Confusion matrix, PyTorch twin (test set, validation threshold)",
    "training_curves.png": "Training loss and validation PR AUC, per epoch and per second",
    "cost.png": "Memory and time of each twin, measured the same way",
    "calibration.png": "Calibration on the test set, before (dashed) and after calibration",
    "decision_curve.png": "Decision curve: net benefit of calling everyone above a risk threshold",
}
CARD_FILE = "model_card.md"
PDF_FILE = "report.pdf"
CURVE_SKIP = ("y_test", "always_show", "no_show_rule")  # constant or 0/1 scores have no curve


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
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
        ax.set_title(FIGURES[filename])
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
        ax.set(xlabel="predicted", ylabel="actual", title=f"{LABELS[twin]} (threshold {metrics['models'][twin]['threshold']:.3f})")
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
    fig.suptitle("Training curves (first seed)")
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
    ax.set(xlabel="mean predicted probability", ylabel="observed no-show rate", title=FIGURES["calibration.png"])
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
           ylabel="net benefit (no-shows reached per appointment)", ylim=(-0.02, top * 1.3 + 0.01),
           title=FIGURES["decision_curve.png"])
    ax.legend(fontsize=8)
    _save(fig, out / "decision_curve.png")


# --------------------------------------------------------------------------------------------------
# Text


def _fmt(model: dict, key: str) -> str:
    value = model.get(key)
    if value is None:
        return "-"
    text = f"{value:.1f}" if key == "epochs" else f"{value:.4f}"
    if "std" in model and key in model["std"]:
        text += f" ± {model['std'][key]:.4f}"
    return text


def results_table(metrics: dict) -> list[str]:
    """Markdown rows: one per model, mean ± std over seeds."""
    header = ["model", *TABLE_METRICS, "confusion [[TN, FP], [FN, TP]]"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, model in metrics["models"].items():
        cells = [LABELS.get(name, name), *[_fmt(model, k) for k in TABLE_METRICS], str(model[CONFUSION])]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def cost_table(metrics: dict) -> list[str]:
    keys = ("train_seconds", "epochs", "seconds_per_epoch", "seconds_to_95pct", "import_rss_mb", "peak_rss_mb")
    rows = ["| twin | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for twin in TWINS:
        model = metrics["models"][twin]
        rows.append(f"| {LABELS[twin]} | " + " | ".join(_fmt(model, k) for k in keys) + " |")
    return rows


def reported_table(metrics: dict) -> list[str]:
    rows = ["| original study (reported, not rerun) | accuracy | F1 | PR AUC | memory (MB) | confusion |",
            "|---|---|---|---|---|---|"]
    for twin, r in metrics["reported"].items():
        rows.append(f"| {LABELS[twin]} | {r['accuracy']:.4f} | {r['f1']:.4f} | {r['pr_auc']:.4f} | "
                    f"{r['peak_rss_mb']:.2f} | {r['confusion_matrix']} |")
    return rows


def interpretation(metrics: dict) -> list[str]:
    """Plain-language findings, generated from the numbers."""
    m = metrics["models"]
    numpy_m, torch_m = m["numpy"], m["torch"]
    agree = metrics["twin_agreement"]
    faster, slower = ("numpy", "torch") if numpy_m["seconds_per_epoch"] <= torch_m["seconds_per_epoch"] else ("torch", "numpy")
    speedup = m[slower]["seconds_per_epoch"] / m[faster]["seconds_per_epoch"]
    lines = [
        f"- **The twins agree.** Mean test PR AUC {numpy_m['pr_auc']:.4f} (NumPy) vs {torch_m['pr_auc']:.4f} "
        f"(PyTorch), a difference of {agree['pr_auc_difference']:.4f}; F1 differs by {agree['f1_difference']:.4f}. "
        f"They start from identical weights and see identical batches; their probabilities differ by "
        f"{agree['mean_abs_probability_difference']:.4f} on average (max {agree['max_abs_probability_difference']:.4f}) "
        "only because dropout masks come from different random generators (with dropout off, the tests "
        "show agreement to 1e-9 in float64).",
        f"- **Speed.** The {LABELS[faster]} is {speedup:.1f}x faster per epoch "
        f"({m[faster]['seconds_per_epoch']:.3f} s vs {m[slower]['seconds_per_epoch']:.3f} s, "
        f"{metrics['machine']['threads']} threads each). For a network this small, per-batch overhead "
        "(autograd bookkeeping, operator dispatch) outweighs the arithmetic, and NumPy has less of it.",
        f"- **Memory.** Peak RSS {numpy_m['peak_rss_mb']:.0f} MB (NumPy) vs {torch_m['peak_rss_mb']:.0f} MB (PyTorch). "
        f"Importing the libraries alone takes {numpy_m['import_rss_mb']:.0f} MB vs {torch_m['import_rss_mb']:.0f} MB, "
        f"so {torch_m['import_rss_mb'] - numpy_m['import_rss_mb']:.0f} MB of the difference is PyTorch's own code "
        "and libraries; training itself adds "
        f"{numpy_m['peak_rss_mb'] - numpy_m['import_rss_mb']:.0f} MB vs {torch_m['peak_rss_mb'] - torch_m['import_rss_mb']:.0f} MB.",
    ]
    best_ref = max(("logistic_regression", "gradient_boosting"), key=lambda k: m[k]["pr_auc"])
    lines.append(
        f"- **Against references.** Best reference: {LABELS[best_ref]} at PR AUC {m[best_ref]['pr_auc']:.4f}, "
        f"F1 {m[best_ref]['f1']:.4f}; always-show has PR AUC {m['always_show']['pr_auc']:.4f} and F1 0."
    )
    if "bayes_limit" in m:
        lines.append(f"- **Bayes limit.** The true probabilities score PR AUC {m['bayes_limit']['pr_auc']:.4f}; "
                     f"the twins are {m['bayes_limit']['pr_auc'] - numpy_m['pr_auc']:.4f} and "
                     f"{m['bayes_limit']['pr_auc'] - torch_m['pr_auc']:.4f} below it.")
    lines.append(
        f"- **Why the original study's F1 collapsed.** At threshold 0.5 the NumPy twin's F1 is "
        f"{numpy_m['f1_at_0_5']:.4f}; at the threshold chosen on validation ({numpy_m['threshold']:.3f}) it is "
        f"{numpy_m['f1']:.4f}. With {metrics['data']['positive_rate']:.1%} positives, the threshold, not the framework, "
        "decides F1; PR AUC, which needs no threshold, is the fair measure of the ranking."
    )
    return lines


def calibration_table(metrics: dict) -> list[str]:
    rows = ["| twin | ECE before → after | Brier before → after | PR AUC before → after |", "|---|---|---|---|"]
    for twin in TWINS:
        m = metrics["models"][twin]
        rows.append(f"| {LABELS[twin]} | {m['ece_uncalibrated']:.4f} → {m['ece']:.4f} | "
                    f"{m['brier_uncalibrated']:.4f} → {m['brier']:.4f} | {m['pr_auc_uncalibrated']:.4f} → {m['pr_auc']:.4f} |")
    return rows


def decisions_table(metrics: dict) -> list[str]:
    shares = [row["share"] for row in next(iter(metrics["decisions"].values()))]
    header = "| call list | " + " | ".join(f"{s:.0%} of each day: precision / recall / lift" for s in shares) + " |"
    rows = [header, "|---|" + "---|" * len(shares)]
    for name, lists in metrics["decisions"].items():
        cells = [f"{r['precision']:.3f} / {r['recall']:.3f} / {r['lift']:.2f}" for r in lists]
        rows.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return rows


def fairness_section(metrics: dict) -> list[str]:
    share = metrics.get("fairness_call_share", 0.1)
    lines = [f"The call list audited: {share:.0%} of each day's appointments, highest calibrated risk first. "
             "Calibration gap = mean predicted minus observed no-show rate; call share against no-show share "
             "says whether a group gets its part of the calls.", ""]
    for twin, table in metrics["fairness"].items():
        lines += [f"### {LABELS[twin]}", ""]
        found = metrics["fairness_findings"][twin]
        lines += ["Findings (|gap| > 0.05, or flag rate over 2x or under 0.5x the overall rate):", ""]
        lines += [f"- {f}" for f in found] or ["- none"]
        lines += ["", "| attribute | group | rows | no-show rate | PR AUC | calibration gap | flag rate | "
                  "call share | no-show share | recall |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in table:
            pr = "–" if r["pr_auc"] is None else f"{r['pr_auc']:.3f}"
            recall = "–" if r["recall"] is None else f"{r['recall']:.3f}"
            lines.append(f"| {r['attribute']} | {r['group']} | {r['rows']:,} | {r['no_show_rate']:.3f} | {pr} | "
                         f"{r['calibration_gap']:+.3f} | {r['flag_rate']:.3f} | {r['call_share']:.3f} | "
                         f"{r['no_show_share']:.3f} | {recall} |")
        lines.append("")
    return lines


def markdown(metrics: dict, image=lambda name: name) -> str:
    d, mach = metrics["data"], metrics["machine"]
    source = ("**synthetic data**: " if d["synthetic"] else "") + d["source"]
    lines = [
        "# noshow: NumPy twin vs PyTorch twin",
        "",
        f"Data: {source} ({d['rows']:,} rows, no-show rate {d['positive_rate']:.4f}, sha256 `{d['sha256'][:16]}…`).  ",
        f"Split: `{d['split']}` (seed {d['split_seed']}): {d['n_train']:,} train, {d['n_val']:,} validation, "
        f"{d['n_test']:,} test. Seeds: {d['seeds']}. Features: {d['n_features']}.  ",
        f"Machine: {mach['platform']}, {mach['cpus']} CPUs, {mach['threads']} threads per twin{' (twins trained side by side)' if mach.get('twins_side_by_side') else ''}; "
        f"Python {mach['python']}, NumPy {mach['numpy']}, PyTorch {mach['torch']}, scikit-learn {mach['scikit-learn']}.",
        "",
        "Thresholds and calibration were chosen on validation data (maximum F1) and applied unchanged to the "
        "test set; every number below is on the test set. With several seeds: mean ± standard deviation.",
        "",
        ("This is the **time split**: the most recent days are held out, so these numbers are the honest "
         "estimate of how the model meets future appointments." if d["split"] == "time" else
         "This split mixes days; for how the model meets future appointments, read `noshow compare "
         "--split time` (the most recent days held out)."),
        "",
        "## Findings",
        "",
        *interpretation(metrics),
        "",
        "## Results",
        "",
        *results_table(metrics),
        "",
        "95% bootstrap intervals on the test set: "
        + "; ".join(f"{LABELS.get(k, k)} PR AUC {v['ci95']['pr_auc'][0]:.3f}–{v['ci95']['pr_auc'][1]:.3f}, "
                    f"F1 {v['ci95']['f1'][0]:.3f}–{v['ci95']['f1'][1]:.3f}"
                    for k, v in metrics["models"].items() if k != "always_show"),
        "",
        "## Calibration (fitted on validation rows; ECE with 10 equal-mass bins)",
        "",
        *calibration_table(metrics),
        "",
        "## Decisions: who to call",
        "",
        "Each day's highest calibrated risks, as `noshow predict --call-share` flags them; precision = share of "
        "the called who would have missed, recall = share of all no-shows called, lift = precision over the "
        f"no-show rate ({metrics['data']['positive_rate']:.3f}). The rule without a model is what a clinic can "
        "do from its own records; the network has to beat it.",
        "",
        *decisions_table(metrics),
        "",
        "## Fairness audit",
        "",
        *fairness_section(metrics),
        "## Cost (each twin in its own fresh process, same thread count)",
        "",
        *cost_table(metrics),
        "",
        "## The original study, for reference",
        "",
        *reported_table(metrics),
        "",
        "Those figures came from different splits and settings for each network, a 0.5 threshold for NumPy, "
        "and memory measured by different means; they are quoted, not reproduced.",
        "",
        "## Figures",
        "",
    ]
    for name, caption in FIGURES.items():
        lines += [f"### {caption}", "", f"![{caption}]({image(name)})", ""]
    lines += ["## Settings", "", "```json", json.dumps(metrics["config"], indent=1), "```", ""]
    return "\n".join(lines)


def to_html(markdown_text: str, title: str) -> str:
    """A minimal Markdown-to-HTML rendering for this report's constructs (headings, lists, tables,
    images, code blocks, paragraphs); no external assets."""
    import re

    def inline(text: str) -> str:
        text = html.escape(text, quote=False)
        text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2">', text)
        text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)

    body, in_code, in_list, table = [], False, False, []

    def flush_table():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            body.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells[0]) + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
                        + "</tbody></table>")
            table.clear()

    for line in markdown_text.splitlines():
        if line.startswith("```"):
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            body.append(html.escape(line))
            continue
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{inline(line[2:])}</li>")
            continue
        if in_list:
            body.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush_table()
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "th{background:#f3f3f3}img{max-width:100%}pre{background:#f6f6f6;padding:8px;font-size:12px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(metrics: dict, curves: dict, out: Path) -> list[Path]:
    """Write every figure, metrics.json, report.md and report.html into ``out``; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    figure_curves(curves, out)
    figure_confusions(metrics, out)
    figure_training(metrics, out)
    figure_cost(metrics, out)
    figure_calibration(curves, out)
    figure_decision_curve(metrics, out)
    with atomic_path(out / CARD_FILE) as tmp:
        tmp.write_text(model_card(metrics))
    write_json(out / METRICS_FILE, metrics)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(markdown(metrics))

    def embedded(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode((out / name).read_bytes()).decode()

    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(to_html(markdown(metrics, image=embedded), "noshow comparison report"))
    from noshow.evaluation.pdf import write_pdf

    with atomic_path(out / PDF_FILE) as tmp:
        write_pdf(metrics, out, tmp)
    return [out / n for n in (METRICS_FILE, "report.md", "report.html", PDF_FILE, CARD_FILE, *FIGURES)]


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
