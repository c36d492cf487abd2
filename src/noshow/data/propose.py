"""``noshow schema``: a schema file proposed from an export's header and values, for a person to correct.

Each role is guessed from the column's name (the spellings of the Kaggle file, of FHIR and of common
scheduling systems) and checked against its values (dates parse, IDs are present); each other column
becomes a covariate by its values (yes/no: a flag; few distinct values: categorical; many numbers:
numeric; many distinct texts: skipped as free text or an ID); date formats are detected from the
values. Every guess is written with a comment that says what it was based on.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from noshow.data import loader, roles
from noshow.data.schema_file import OPTIONAL_ROLES, REQUIRED_ROLES, read_schema
from noshow.errors import NoshowError
from noshow.files import atomic_path

SAMPLE_ROWS = 5_000  # values looked at per column
# Role -> the normalised column names (lower case, letters and digits only) that suggest it, best first.
ROLE_NAMES = {
    "appointment_id": ("appointmentid", "apptid", "appointmentno", "appointmentnumber", "visitid", "encounterid",
                       "bookingid", "appointment", "id"),
    "patient_id": ("patientid", "mrn", "patientnumber", "patientno", "personid", "nhsnumber", "patient", "pid"),
    "booked_at": ("scheduledday", "bookedat", "bookingdate", "bookeddate", "bookedon", "created", "createdat",
                  "createddate", "dateBooked".lower(), "scheduledat", "madeon", "booked", "scheduled"),
    "appointment_date": ("appointmentday", "appointmentdate", "apptdate", "visitdate", "start", "startdate",
                         "appointmentdatetime", "date", "appointment"),
    "appointment_time": ("appointmenttime", "appttime", "starttime", "slottime", "time", "slot"),
    "outcome": ("noshow", "status", "outcome", "attendance", "attended", "appointmentstatus", "attendstatus", "dna"),
    "age": ("age", "ageyears", "ageatappointment", "patientage"),
    "birth_date": ("birthdate", "dob", "dateofbirth", "birthday"),
    "gender": ("gender", "sex"),
    "reminder_sent": ("smsreceived", "sms", "remindersent", "reminder", "textreminder", "smsreminder"),
}
DATE_ROLES = ("booked_at", "appointment_date", "birth_date")
# Candidate strptime formats, tried in order on the sampled values (day first before month first).
DATE_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
                "%m/%d/%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
                "%d-%m-%Y", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d")
OUTCOME_WORDS = {
    "missed": ("yes", "no show", "noshow", "no-show", "no_show", "dna", "did not attend", "missed", "absent",
               "failed", "not attended"),
    "attended": ("no", "attended", "arrived", "fulfilled", "completed", "complete", "checked out", "checked-out",
                 "checkedout", "show", "shown", "seen", "kept", "present"),
    "pending": ("booked", "scheduled", "pending", "proposed", "confirmed", "waitlist"),
}
FLAG_VALUES = {*roles.TRUE_TEXT, *roles.FALSE_TEXT}
MAX_CATEGORIES = 200  # more distinct texts than this (and than 5% of the rows): free text or an ID
AUDIT_HINTS = ("district", "neighbourhood", "neighborhood", "region", "area", "zip", "postcode", "postal",
               "ethnic", "race", "insurance", "payer", "language", "deprivation")


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _sample(text: pl.DataFrame, column: str) -> pl.Series:
    return text[column].head(SAMPLE_ROWS).str.strip_chars().replace("", None).drop_nulls()


def date_format(values: pl.Series) -> tuple[str | None, str] | None:
    """The format that reads every sampled value (None: ISO 8601), with a comment; None when none does."""
    if len(values) == 0:
        return None
    if values.str.contains(roles.ISO_PATTERN).all():
        return None, "ISO 8601"
    readers = [f for f in DATE_FORMATS if values.str.to_datetime(f, strict=False).null_count() == 0]
    if not readers:
        return None
    chosen = readers[0]
    swapped = chosen.replace("%d", "%D").replace("%m", "%d").replace("%D", "%m")
    if swapped in readers and swapped != chosen:
        return chosen, f"{chosen!r}; {swapped!r} reads every value too: check which comes first, day or month"
    return chosen, repr(chosen)


def _is_date(values: pl.Series) -> bool:
    return date_format(values) is not None


def guess_roles(text: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """Role -> (column, why), from the names first, checked by the values."""
    found: dict[str, tuple[str, str]] = {}
    taken: set[str] = set()
    normal = {c: _normal(c) for c in text.columns}
    for role, names in ROLE_NAMES.items():
        for wanted in names:
            column = next((c for c in text.columns if normal[c] == wanted and c not in taken), None)
            if column is None:
                continue
            values = _sample(text, column)
            if (role in DATE_ROLES) != _is_date(values) and role not in ("outcome", "gender", "reminder_sent", "age"):
                continue  # a date role needs dates; an ID is not one
            found[role] = (column, f"named like {role.replace('_', ' ')}")
            taken.add(column)
            break
    if "age" in found and "birth_date" in found:
        del found["birth_date"]
    for role in ("booked_at", "appointment_date"):  # by their values when no name says it
        if role not in found:
            dates = [c for c in text.columns if c not in taken and _is_date(_sample(text, c))]
            if dates:
                found[role] = (dates[0], "the first unclaimed column of dates: check it")
                taken.add(dates[0])
    return found


def outcome_values(values: pl.Series, column: str) -> dict[str, list[str]]:
    """The outcome's values sorted into missed / attended / pending / excluded by their words."""
    kinds: dict[str, list[str]] = {"missed": [], "attended": [], "pending": [], "excluded": []}
    asks_no_show = "noshow" in _normal(column) or "dna" in _normal(column)
    for value in sorted(values.unique().to_list()):
        word = value.lower().strip()
        if word in ("yes", "no", "1", "0", "true", "false"):
            yes = word in ("yes", "1", "true")
            kinds["missed" if yes == asks_no_show else "attended"].append(value)
            continue
        kind = next((k for k, words in OUTCOME_WORDS.items() if word in words), "excluded")
        kinds[kind].append(value)
    return kinds


def covariate_kind(values: pl.Series, rows: int) -> tuple[str | None, str]:
    """(kind or None to skip, why) of a column that is no role."""
    if len(values) == 0:
        return None, "skipped: blank in every row looked at"
    distinct = values.n_unique()
    if set(values.str.to_lowercase().unique().to_list()) <= FLAG_VALUES and distinct <= 2:
        return "flags", "yes/no values"
    numbers = values.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
    if numbers.null_count() == 0:
        if distinct <= 20:
            return "categorical", f"{distinct} distinct numbers (codes or levels): read as categories"
        return "numeric", f"numbers ({distinct} distinct)"
    if distinct > MAX_CATEGORIES and distinct > 0.05 * min(rows, SAMPLE_ROWS):
        return None, f"skipped: {distinct} distinct texts in {min(rows, SAMPLE_ROWS):,} rows (free text or an ID?)"
    if _is_date(values):
        return None, "skipped: dates (not a role noshow knows)"
    return "categorical", f"{distinct} distinct values"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_list(values) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def propose(path: str | Path, encoding: str | None = None, separator: str | None = None) -> str:
    """The text of a schema file proposed for the export at ``path``."""
    raw = loader.unpacked(path, Path(path).read_bytes()) if Path(path).is_file() else loader.read_bytes(path)
    text_sample, _ = loader.decode(path, raw[:1 << 16], encoding)
    header = text_sample.split("\n", 1)[0]
    if separator is None:  # the separator that splits the header into the most fields
        counts = {sep: header.count(sep) for sep in loader.SEPARATORS}
        separator = max(counts, key=counts.get)
    text, _ = loader.text_frame_from_bytes(path, raw, encoding, separator, known=header.split(separator))
    if text.height == 0:
        raise NoshowError(f"{path}: the header has no data rows below it")
    found = guess_roles(text)
    missing = [r for r in REQUIRED_ROLES if r not in found]
    lines = [f"# Schema proposed by `noshow schema` for {Path(path).name} ({text.height:,} rows).",
             "# Every guess says what it was based on: check each, correct what is wrong, then",
             f"#   noshow check --data {Path(path).name} --schema THIS_FILE",
             f"name = {_toml_string(Path(path).stem)}", "", "[columns]"]
    for role in (*REQUIRED_ROLES, "outcome", *OPTIONAL_ROLES):
        if role in found:
            column, why = found[role]
            lines.append(f"{role} = {_toml_string(column)}  # {why}")
        elif role in REQUIRED_ROLES:
            lines.append(f"# {role} = \"?\"  # REQUIRED: no column looked like it; name it here")
        else:
            lines.append(f"# {role} = \"?\"  # optional: no column looked like it")
    if "outcome" in found:
        column = found["outcome"][0]
        kinds = outcome_values(_sample(text, column), column)
        lines += ["", "[outcome]  # from the outcome column's values"]
        lines += [f"{kind} = {_toml_list(values)}" for kind, values in kinds.items()
                  if values or kind in ("missed", "attended")]
        if not kinds["excluded"]:
            lines.append("# every other value (cancelled, rescheduled, ...) is left out and counted by `check`")
        if not kinds["missed"] or not kinds["attended"]:
            lines.append("# CHECK: list the values meaning missed and attended above")
    formats = []
    for role in ("booked_at", "appointment_date", "appointment_time", "birth_date"):
        if role in found:
            detected = date_format(_sample(text, found[role][0]))
            if detected and detected[0] is not None:
                formats.append(f"{role} = {_toml_string(detected[0])}  # read every value: {detected[1]}")
    lines += ["", "[formats]  # strptime formats; a role not listed is read as ISO 8601", *formats]
    used = {column for column, _ in found.values()}
    kinds: dict[str, list[tuple[str, str]]] = {"categorical": [], "flags": [], "numeric": []}
    skipped = []
    for column in text.columns:
        if column in used or column == "true_probability":
            continue
        kind, why = covariate_kind(_sample(text, column), text.height)
        (kinds[kind] if kind else skipped).append((column, why))
    lines += ["", "[covariates]  # the export's other columns, by their values"]
    for kind, columns in kinds.items():
        lines.append(f"{kind} = {_toml_list(c for c, _ in columns)}")
        lines += [f"#   {c}: {why}" for c, why in columns]
    lines += [f"# {c}: {why}" for c, why in skipped]
    audit = [found["gender"][0]] if "gender" in found else []
    audit += [c for c, _ in kinds["categorical"] if any(h in _normal(c) for h in AUDIT_HINTS)]
    lines += ["", "[audit]  # the fairness audit's attributes besides age bands; add any your clinic must check",
              f"groups = {_toml_list(audit)}", ""]
    if missing:
        lines.insert(3, f"# NOT READY: name the column of {', '.join(missing)} under [columns]")
    return "\n".join(lines)


def write_proposal(path: str | Path, out: str | Path, encoding: str | None = None, separator: str | None = None) -> dict:
    """Write :func:`propose`'s schema to ``out`` (atomically) and say whether it reads the file as is."""
    text = propose(path, encoding, separator)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    try:
        schema = read_schema(out)
    except NoshowError as exc:
        return {"out": str(out), "ready": False, "problem": str(exc)}
    return {"out": str(out), "ready": True, "roles": sorted(schema.columns), "covariates": list(schema.covariates)}
