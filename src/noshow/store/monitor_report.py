"""The monitor's page (``monitor.html``, also ``GET /monitor?format=html``) and ``monitor.json``.

One self-contained HTML file: figures as inline PNG (matplotlib, no pyplot, so that the service's
threads can draw at once), tables of the weeks and the groups, the call's effect with its method
said in words, and the warnings with their thresholds. No patient appears in it: only counts.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from noshow.files import atomic_folder
from noshow.store.monitor import finite

JSON_FILE = "monitor.json"
HTML_FILE = "monitor.html"
GROUP_NAMES = {"flagged_reached": "flagged, reached", "flagged_not_reached": "flagged, not reached",
               "held_out": "flagged, held out (randomised)", "not_flagged": "not flagged"}


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _weeks_figure(result: dict) -> str:
    from matplotlib.figure import Figure

    weeks = [w for w in result["per_week"] if w["with_outcome"]]
    figure = Figure(figsize=(6.4, 3.2))
    axes = figure.subplots()
    labels = [w["week"] for w in weeks]
    for key, style in (("precision", "o-"), ("recall", "s-"), ("observed_rate", "^--"), ("predicted_rate", "v:")):
        axes.plot(labels, [w[key] if w[key] is not None else float("nan") for w in weeks], style, label=key.replace("_", " "))
    axes.set_ylim(0, 1)
    axes.set_xlabel("week starting")
    axes.set_title("The list, week by week (outcomes known)")
    axes.legend(fontsize=8, ncols=2)
    axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    return _png(figure)


def _calibration_figure(result: dict) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6, 4.2))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="#999", lw=1)
    for name, marker, shift in (("all", "o", -0.004), ("unacted", "s", 0.004)):
        bins = result["calibration"][name]["bins"]
        x = [b["predicted"] + shift for b in bins]
        y = [b["observed"] for b in bins]
        low = [b["observed"] - b["ci"][0] for b in bins]
        high = [b["ci"][1] - b["observed"] for b in bins]
        axes.errorbar(x, y, yerr=[low, high], fmt=marker, capsize=3, label=f"{name} (n={result['calibration'][name]['n']:,})")
    axes.set_xlabel("predicted no-show risk")
    axes.set_ylabel("observed no-show rate (95% CI)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_title("Calibration in practice")
    axes.legend(fontsize=8)
    return _png(figure)


def _groups_figure(result: dict) -> str:
    from matplotlib.figure import Figure

    groups = [(GROUP_NAMES[k], g) for k, g in result["groups"].items() if g["n"]]
    figure = Figure(figsize=(6.4, 2.6))
    axes = figure.subplots()
    rates = [g["rate"] for _, g in groups]
    errors = [[g["rate"] - g["ci"][0] for _, g in groups], [g["ci"][1] - g["rate"] for _, g in groups]]
    axes.barh([n for n, _ in groups], rates, xerr=errors, capsize=3, color="#6a8fb5")
    axes.set_xlabel("no-show rate (95% CI)")
    axes.set_xlim(0, 1)
    axes.invert_yaxis()
    return _png(figure)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _ci(pair) -> str:
    return "–" if not pair or pair[0] is None else f"{pair[0]:.3f} to {pair[1]:.3f}"


def _effect_html(effect: dict) -> str:
    randomised, observational = effect["randomised"], effect["observational"]
    if randomised:
        r = randomised
        return (f"<p><b>Randomised</b> ({html.escape(r['method'])}): no-show rate {r['called']['rate']:.3f} among the "
                f"{r['called']['n']:,} assigned to be called against {r['held_out']['rate']:.3f} among the "
                f"{r['held_out']['n']:,} held out. Difference <b>{r['absolute']:+.3f}</b> (95% CI {_ci(r['absolute_ci'])}); "
                f"share of no-shows prevented <b>E = {r['E']:.3f}</b> (95% CI {_ci(r['E_ci'])}). "
                f"{r['reached_share']:.0%} of the calls reached the patient. {html.escape(r['note'])}.</p>")
    if observational:
        o = observational
        return (f"<p><b>Observational, not randomised.</b> {html.escape(o['method'])}. Just above the cut-off "
                f"(called): observed {o['above_cutoff']['rate']:.3f}, predicted {o['above_cutoff']['predicted']:.3f} "
                f"(n={o['above_cutoff']['n']:,}); just below (not called): observed {o['below_cutoff']['rate']:.3f}, "
                f"predicted {o['below_cutoff']['predicted']:.3f} (n={o['below_cutoff']['n']:,}). Observed minus "
                f"predicted differs by {o['absolute_vs_predicted']:+.3f} (95% CI {_ci(o['absolute_vs_predicted_ci'])}).</p>")
    return "<p>No estimate yet: no outcomes near a cut-off and no randomised holdout.</p>"


def _drift_html(drift: list[dict]) -> str:
    if not drift:
        return "<h2>Drift against the training data</h2><p>Not recorded (lists issued by predict --db record it).</p>"
    rows = "".join(f"<tr><td>{html.escape(d['day'])}</td><td>{_fmt(d['max_group_psi'])}</td>"
                   f"<td>{html.escape('; '.join(d['warnings']) or '–')}</td></tr>" for d in drift)
    return (f"<h2>Drift against the training data</h2><table><thead><tr><th>day</th><th>largest group PSI</th>"
            f"<th>warnings</th></tr></thead><tbody>{rows}</tbody></table>")


def _table(rows: list[dict], key: str) -> str:
    columns = (key, "appointments", "with_outcome", "flagged", "held_out", "called", "reached", "missed", "precision",
               "recall", "observed_rate", "predicted_rate")
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #111; font-size: 13px; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0 16px; } th, td { border: 1px solid #999; padding: 3px 6px; text-align: right; }
th { background: #e8e8e8; } td:first-child { text-align: left; } .warn { background: #fde8e8; border-left: 4px solid #b00020;
padding: 6px 10px; } .ok { background: #e9f5ec; border-left: 4px solid #2e7d32; padding: 6px 10px; } img { max-width: 100%; }
.note { color: #444; font-size: 12px; }"""


def monitor_html(result: dict) -> str:
    """The monitor page for :func:`noshow.store.monitor.monitor`'s result."""
    s, d = result["summary"], result["discrimination"]
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in result["warnings"])
    due = "<b>Retraining is due.</b>" if result["retrain_due"] else ""
    said = (f"<div class=warn><b>Warnings</b><ul>{warnings}</ul>{due}</div>"
            if warnings else "<div class=ok>No warning at the thresholds below.</div>")
    thresholds = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result["thresholds"].items())
    groups = "".join(f"<tr><td>{GROUP_NAMES[k]}</td><td>{_fmt(g['n'])}</td><td>{_fmt(g['missed'])}</td>"
                     f"<td>{_fmt(g['rate'])}</td><td>{_ci(g['ci'])}</td></tr>" for k, g in result["groups"].items())
    discrimination = "".join(
        f"<tr><td>{name}</td><td>{_fmt(d[name]['n'])}</td><td>{_fmt(d[name]['pr_auc'])}</td><td>{_fmt(d[name]['roc_auc'])}</td>"
        f"<td>{_fmt(result['calibration'][name]['ece'])}</td></tr>" for name in ("all", "unacted"))
    figures = ""
    if s["with_outcome"]:
        figures = (f"<img alt='precision and recall by week' src='{_weeks_figure(result)}'>"
                   f"<img alt='calibration in practice' src='{_calibration_figure(result)}'>"
                   f"<img alt='no-show rates by group' src='{_groups_figure(result)}'>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result["notes"])
    freed = result["freed_slots"]
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>noshow monitor</title><style>{STYLE}</style></head><body>"
        f"<h1>Monitor: what the lists did</h1>"
        f"<p>{s['days']} day(s) from {_fmt(s['first_day'])} to {_fmt(s['last_day'])}: {s['appointments']:,} appointments "
        f"listed, {s['with_outcome']:,} with an outcome; {s['flagged']:,} flagged, {s['held_out']:,} held out, "
        f"{s['called']:,} called, {s['reached']:,} reached. Model: {html.escape(', '.join(s['models']) or '–')}.</p>"
        f"{said}<p class=note>Thresholds: {html.escape(thresholds)}.</p>"
        f"<h2>The call's effect</h2>{_effect_html(result['effect'])}"
        f"<h2>Discrimination and calibration</h2><table><thead><tr><th>appointments</th><th>n</th><th>PR AUC</th>"
        f"<th>ROC AUC</th><th>ECE</th></tr></thead><tbody>{discrimination}</tbody></table>"
        f"<p class=note>Model's validation PR AUC: {_fmt(d['model_validation_pr_auc'])}. 'unacted' = nobody acted on "
        f"them (not flagged, or held out), weighted to stand for all appointments uncalled; 'all' mixes the model's "
        f"error with what the calls changed.</p>{figures}"
        f"<h2>No-show rates by group</h2><table><thead><tr><th>group</th><th>n</th><th>missed</th><th>rate</th>"
        f"<th>95% CI</th></tr></thead><tbody>{groups}</tbody></table>"
        f"<p>Freed slots (the call ended in a reschedule or a cancellation): {freed['rescheduled']:,} rescheduled, "
        f"{freed['cancelled']:,} cancelled; {_refilled(freed)}.</p>"
        f"{_drift_html(result['drift'])}"
        f"<h2>By week</h2>{_table(result['per_week'], 'week')}<h2>By day</h2>{_table(result['per_day'], 'day')}"
        f"<ul class=note>{notes}</ul></body></html>\n")


def _refilled(freed: dict) -> str:
    """The refill KPI in words."""
    if not freed["freed"]:
        return "none to refill"
    if not freed["bookings_recorded"]:
        return "refilled: not known yet (noshow outcomes records the later bookings)"
    return f"{freed['refilled']:,} of {freed['freed']:,} booked again ({freed['refill_rate']:.0%})"


def write_monitor(result: dict, out: str | Path) -> list[Path]:
    """Write ``monitor.json`` and ``monitor.html`` into ``out`` (replaced whole, atomically)."""
    out = Path(out)
    with atomic_folder(out, JSON_FILE) as tmp:
        (tmp / JSON_FILE).write_text(json.dumps(finite(result), indent=1, default=str))
        (tmp / HTML_FILE).write_text(monitor_html(result), encoding="utf-8")
    return [out / JSON_FILE, out / HTML_FILE]
