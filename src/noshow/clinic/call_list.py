"""The printable call list: one self-contained HTML page for the staff who phone patients.

One section per appointment day (each starts on a new printed page), its flagged appointments in
risk order, each row with rank, appointment and patient ids, risk, the reasons, and empty
"called" and "reached" boxes to tick by hand; a patient with several appointments on a day's list
is marked so that one call covers them. Inline CSS only, no script and no external fetch, so
it opens and prints anywhere, offline.
"""

from __future__ import annotations

import html
from pathlib import Path

import polars as pl

from noshow.clinic.reasons import SEPARATOR
from noshow.clinic.scoring import FLAGGED, PROBABILITY, RANK, REASONS
from noshow.data import schema as S

STYLE = """
:root { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #111; }
body { margin: 24px; font-size: 13px; }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: #444; margin: 0 0 16px; }
section { margin-bottom: 28px; }
h2 { font-size: 16px; border-bottom: 2px solid #333; padding-bottom: 3px; margin: 18px 0 6px; }
h2 small { font-weight: normal; color: #444; font-size: 13px; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #e8e8e8; font-size: 12px; }
td.num { width: 1%; text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.id small { font-family: "DejaVu Sans", Arial, sans-serif; color: #444; }
td.id { width: 1%; white-space: nowrap; font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
td.box { width: 54px; text-align: center; font-size: 18px; }
ul.reasons { margin: 0; padding-left: 16px; }
.empty { color: #555; font-style: italic; }
.note { color: #444; font-size: 11px; margin-top: 20px; }
@media print {
  body { margin: 0; font-size: 11px; }
  section { break-before: page; }
  section:first-of-type { break-before: auto; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: #e8e8e8 !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
BOX = "&#9744;"  # an empty ballot box, ticked by hand


def _row(row: dict, same_patient: int) -> str:
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in row[REASONS].split(SEPARATOR) if r)
    # A patient with several appointments on the list needs one call, not several.
    several = f"<br><small>{same_patient} on this list: one call</small>" if same_patient > 1 else ""
    return (f"<tr><td class=num>{row[RANK]}</td><td class=id>{row[S.APPOINTMENT_ID]}</td>"
            f"<td class=id>{html.escape(str(row[S.PATIENT_ID]))}{several}</td>"
            f"<td class=num>{100 * row[PROBABILITY]:.0f}%</td><td><ul class=reasons>{reasons}</ul></td>"
            f"<td class=box>{BOX}</td><td class=box>{BOX}</td></tr>")


def _section(day, rows: pl.DataFrame, n_day: int) -> str:
    heading = f"{day:%A %d %B %Y}" if hasattr(day, "strftime") else str(day)
    head = (f"<h2>{html.escape(heading)} <small>{rows.height} to call of {n_day} appointments</small></h2>")
    if rows.height == 0:
        return f"<section>{head}<p class=empty>No appointment flagged on this day.</p></section>"
    per_patient = rows[S.PATIENT_ID].value_counts()
    same = dict(zip(per_patient[S.PATIENT_ID].to_list(), per_patient["count"].to_list()))
    body = "".join(_row(r, same[r[S.PATIENT_ID]]) for r in rows.iter_rows(named=True))
    return (f"<section>{head}<table><thead><tr><th>rank</th><th>appointment</th><th>patient</th>"
            f"<th>risk</th><th>reasons (log-odds against a typical appointment)</th><th>called</th>"
            f"<th>reached</th></tr></thead><tbody>{body}</tbody></table></section>")


def call_list_html(scores: pl.DataFrame, rule: str, title: str = "Call list") -> str:
    """The page for ``scores`` (:func:`noshow.clinic.scoring.score`'s frame): flagged rows only,
    days in date order, highest risk first within a day."""
    sections = []
    for (day,), rows in scores.sort(S.APPOINTMENT_DAY, RANK).group_by(S.APPOINTMENT_DAY, maintain_order=True):
        sections.append(_section(day, rows.filter(pl.col(FLAGGED) == 1), rows.height))
    flagged = int(scores[FLAGGED].sum())
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=meta>{flagged} of {scores.height} appointments to call, "
        f"flagged by {html.escape(rule)}.</p>{''.join(sections)}"
        "<p class=note>Risk: the model's calibrated probability that the patient will not come. Reasons: the "
        "parts of the appointment that raise its risk most, with their size in log-odds. For prioritising "
        "reminders and support only: never to deny, penalise or overbook care without human review.</p>"
        "</body></html>\n"
    )


def write_call_list(scores: pl.DataFrame, path: str | Path, rule: str, title: str = "Call list") -> Path:
    """Write :func:`call_list_html` to ``path`` (give an :func:`~noshow.files.atomic_path`)."""
    Path(path).write_text(call_list_html(scores, rule, title), encoding="utf-8")
    return Path(path)
