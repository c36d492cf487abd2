"""What ``noshow check`` says about a loaded file: rows, no-show rate, date range, patients, the
quirks the loader counted and how it read the file (:func:`summarize`, as data for ``--json``;
:func:`format_summary`, as text)."""

from __future__ import annotations

from noshow.data import schema as S
from noshow.data.loader import SEPARATORS, Appointments, duplicate_ids

# The optional roles whose absence `check` names (age and birth date are one fact: the age).
OPTIONAL_SHOWN = ("appointment_time", "age", "gender", "reminder_sent")


def summarize(data: Appointments) -> dict:
    """Plain-data summary of a loaded file: rows, rate, date range, patients and quirks."""
    frame = data.frame
    summary = {
        "source": data.source,
        "synthetic": data.synthetic,
        "sha256": data.sha256,
        "rows": frame.height,
        "patients": frame[S.PATIENT_KEY].n_unique(),
        **({"neighbourhoods": frame[S.NEIGHBOURHOOD].n_unique()} if S.NEIGHBOURHOOD in frame.columns else {}),
        "appointment_days": [str(frame[S.APPOINTMENT_DATE].min()), str(frame[S.APPOINTMENT_DATE].max())],
        "scheduled_days": [str(frame[S.SCHEDULED_DATE].min()), str(frame[S.SCHEDULED_DATE].max())],
        "same_day_share": float((frame[S.APPOINTMENT_DATE] <= frame[S.SCHEDULED_DATE]).mean()),
        "quirks": [{"name": q.name, "count": q.count, "handling": q.handling} for q in data.quirks],
        "duplicate_appointment_ids": duplicate_ids(data)[0],
    }
    if data.schema is not None:
        summary["schema"] = data.schema.name
        summary["roles_absent"] = [r for r in OPTIONAL_SHOWN if not data.schema.has(r)
                                   and not (r == "age" and data.schema.has("birth_date"))]
        summary["covariates"] = {c: str(frame[c].dtype) for c in data.schema.covariates}
    if data.text_format is not None:
        summary["encoding"] = data.text_format.encoding
        summary["separator"] = SEPARATORS.get(data.text_format.separator, data.text_format.separator)
    if data.has_label:
        summary["no_show_rate"] = float(frame[S.TARGET].mean())
        summary["no_shows"] = int(frame[S.TARGET].sum())
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable text of :func:`summarize`'s output."""
    origin = "synthetic data" if summary["synthetic"] else "file"
    lines = [
        f"{origin}: {summary['source']}",
        f"sha256:            {summary['sha256']}",
        f"rows:              {summary['rows']:,}",
    ]
    if "no_show_rate" in summary:
        lines.append(f"no-show rate:      {summary['no_show_rate']:.4f} ({summary['no_shows']:,} no-shows)")
    else:
        lines.append("no-show rate:      (no label column)")
    first, last = summary["appointment_days"]
    lines += [
        f"appointment days:  {first} .. {last}",
        f"scheduled days:    {summary['scheduled_days'][0]} .. {summary['scheduled_days'][1]}",
        f"patients:          {summary['patients']:,}",
        *([f"neighbourhoods:    {summary['neighbourhoods']}"] if "neighbourhoods" in summary else []),
        f"same-day bookings: {summary['same_day_share']:.1%}",
        f"duplicate IDs:     {summary['duplicate_appointment_ids']:,}",
    ]
    if "schema" in summary:
        lines.append(f"schema:            {summary['schema']}; covariates: {', '.join(summary['covariates']) or 'none'}")
        if summary["roles_absent"]:
            lines.append(f"absent roles:      {', '.join(summary['roles_absent'])} (their features are left out)")
    if "encoding" in summary:
        lines.append(f"read as:           {summary['encoding']}, {summary['separator']}-separated")
    lines.append("quirks:")
    for quirk in summary["quirks"]:
        lines.append(f"  {quirk['name']}: {quirk['count']:,} rows -> {quirk['handling']}")
    return "\n".join(lines)
