"""The comparison report as a printable A4 PDF: every table and figure of ``report.md``.

Written with matplotlib's PDF backend, which noshow already needs for its figures: no TeX, no
browser, no further dependency, and the same fonts on every machine. Tables are drawn as real
tables, figures are embedded at print resolution, two to a page.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

A4_INCHES = (8.27, 11.69)
MARGIN = 0.06  # of the page, on every side
FONT = 7.5


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _page(pdf, blocks: list) -> None:
    """One A4 page of blocks, top to bottom: ("h", text), ("p", text) or ("t", header, rows[, widths
    of the leading columns as shares of the page's width])."""
    plt = _plt()
    fig = plt.figure(figsize=A4_INCHES)
    y = 1 - MARGIN
    for block in blocks:
        if block[0] == "h":
            fig.text(MARGIN, y, block[1], fontsize=13 if y > 0.9 else 11, weight="bold", va="top")
            y -= 0.035
        elif block[0] == "p":
            lines = textwrap.wrap(block[1], 120)
            fig.text(MARGIN, y, "\n".join(lines), fontsize=FONT, va="top", linespacing=1.4)
            y -= 0.0135 * len(lines) + 0.012
        else:
            header, rows = block[1], block[2]
            height = 0.0165 * (len(rows) + 1)
            ax = fig.add_axes((MARGIN, y - height, 1 - 2 * MARGIN, height))
            ax.axis("off")
            # The first column names things and gets the room; the numbers share the rest.
            lead = block[3] if len(block) > 3 else [0.30]
            rest = (1 - sum(lead)) / (len(header) - len(lead))
            widths = [*lead, *[rest] * (len(header) - len(lead))]
            table = ax.table(cellText=rows, colLabels=header, cellLoc="left", colWidths=widths, bbox=(0, 0, 1, 1))
            table.auto_set_font_size(False)
            table.set_fontsize(FONT - 0.5)
            for (row, _), cell in table.get_celld().items():
                cell.set_edgecolor("#bbbbbb")
                if row == 0:
                    cell.set_facecolor("#eeeeee")
            y -= height + 0.025
    pdf.savefig(fig)
    plt.close(fig)


def _figure_pages(pdf, out: Path, names: list[str], captions: dict) -> None:
    plt = _plt()
    for start in range(0, len(names), 2):
        fig = plt.figure(figsize=A4_INCHES)
        for slot, name in enumerate(names[start:start + 2]):
            top = 1 - MARGIN - slot * 0.46
            ax = fig.add_axes((MARGIN, top - 0.42, 1 - 2 * MARGIN, 0.40))
            ax.imshow(plt.imread(out / name))
            ax.axis("off")
            fig.text(MARGIN, top, captions[name], fontsize=9, weight="bold", va="top")
        pdf.savefig(fig)
        plt.close(fig)


def write_pdf(metrics: dict, out: Path, path: Path) -> None:
    """Write the report of ``metrics`` (figures already in ``out``) to ``path`` as A4 pages."""
    from matplotlib.backends.backend_pdf import PdfPages

    from noshow.evaluation import report as R

    d = metrics["data"]
    source = ("synthetic data: " if d["synthetic"] else "") + d["source"]
    keys = ("pr_auc", "roc_auc", "f1", "precision", "recall", "brier", "threshold", "f1_at_0_5")
    results = [[R.LABELS.get(n, n)[:52], *[R._fmt(m, k).replace(" ± ", "±") for k in keys]]
               for n, m in metrics["models"].items()]
    findings = [line.removeprefix("- ").replace("**", "") for line in R.interpretation(metrics)]
    with PdfPages(path, metadata={"Title": "noshow comparison report", "Creator": "noshow"}) as pdf:
        _page(pdf, [
            ("h", "noshow: NumPy twin vs PyTorch twin"),
            ("p", f"Data: {source} ({d['rows']:,} rows, no-show rate {d['positive_rate']:.4f}). Split "
                  f"'{d['split']}' (seed {d['split_seed']}): {d['n_train']:,} train, {d['n_val']:,} validation, "
                  f"{d['n_test']:,} test; seeds {d['seeds']}. Thresholds and calibration chosen on validation "
                  "rows; every number is on the test rows."),
            ("h", "Findings"), *[("p", "• " + f) for f in findings],
            ("h", "Results"), ("t", ["model", *keys], results),
        ])
        shares = [r["share"] for r in next(iter(metrics["decisions"].values()))]
        _page(pdf, [
            ("h", "Calibration (validation rows; ECE with 10 equal-mass bins)"),
            ("t", ["twin", "ECE before → after", "Brier before → after", "PR AUC before → after"],
             [[c.strip() for c in row.strip("|").split("|")] for row in R.calibration_table(metrics)[2:]]),
            ("h", "Decisions: who to call"),
            ("p", "Each day's highest calibrated risks; precision / recall / lift of the call list at a share "
                  "of each day's appointments. The rule without a model: 2+ earlier no-shows or booked 15+ "
                  "days ahead."),
            ("t", ["call list", *[f"{s:.0%} of each day" for s in shares]],
             [[R.LABELS.get(n, n)[:60], *[f"{r['precision']:.3f} / {r['recall']:.3f} / {r['lift']:.2f}" for r in lists]]
              for n, lists in metrics["decisions"].items()], [0.43]),
            ("h", "Cost"),
            ("t", ["twin", "train s", "s / epoch", "import MB", "peak MB"],
             [[R.LABELS[t], *(R._fmt(metrics["models"][t], k) for k in
                              ("train_seconds", "seconds_per_epoch", "import_rss_mb", "peak_rss_mb"))]
              for t in R.TWINS]),
        ])
        for twin, table in metrics["fairness"].items():
            found = metrics["fairness_findings"][twin] or ["none"]
            _page(pdf, [
                ("h", f"Fairness audit: {R.LABELS[twin]}"),
                *[("p", "• " + f) for f in found[:8]],
                ("t", ["attribute", "group", "rows", "no-show", "PR AUC", "cal. gap", "flag rate", "calls",
                       "no-shows", "recall"],
                 [[r["attribute"], r["group"][:26], f"{r['rows']:,}", f"{r['no_show_rate']:.3f}",
                   "–" if r["pr_auc"] is None else f"{r['pr_auc']:.3f}", f"{r['calibration_gap']:+.3f}",
                   f"{r['flag_rate']:.3f}", f"{r['call_share']:.3f}", f"{r['no_show_share']:.3f}",
                   "–" if r["recall"] is None else f"{r['recall']:.3f}"] for r in table], [0.12, 0.22]),
            ])
        _figure_pages(pdf, out, [n for n in R.FIGURES if (out / n).exists()], R.FIGURES)
