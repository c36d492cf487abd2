"""Reading a clinic's own export through its schema file into the loader's internal frame.

:func:`typed_frame` is the schema's counterpart of :func:`noshow.data.loader.typed_frame`: it takes
the all-text frame of an export and returns the frame every later stage reads, with the roles under
their internal (Kaggle) names and the covariates under their own, plus the quirks it counted and
handled. The rules, each stated once here:

- IDs are kept as text unless every one is an integer (then Int64, as in the Kaggle file); patient
  IDs in exponent form are written out in plain decimal (the Kaggle file's quirk, kept for every file).
- Dates and times are read with the schema's strptime format, or as ISO 8601 when it gives none
  (``2016-04-29``, ``2016-04-29T18:38:08``, with or without fractions of a second and an offset).
  An offset is dropped: the time is the wall-clock time where the clinic is, which is what lead time,
  weekday and hour of day mean. A value that does not match names its column and line.
- ``age`` follows the Kaggle file's quirks (-1 read as 0, over 100 capped); ``birth_date`` gives the
  age in whole years on the appointment's day.
- ``gender`` is read as F or M when it spells female or male in any of the usual ways, else U.
- ``reminder_sent`` and flag covariates are 0/1, yes/no, true/false (any case).
- The outcome: ``missed`` values are 1, ``attended`` 0; ``pending`` appointments are still to come
  (scored, never learnt from); every other value (or only the ``excluded`` ones, when given) leaves
  the row out, counted.
- A missing categorical covariate reads as ``(missing)``, a missing numeric one as 0, both counted.
"""

from __future__ import annotations

import polars as pl

from noshow.data import schema as S
from noshow.data.rules import AGE_CAP, AGE_RANGE, YEAR_RANGE
from noshow.data.schema_file import APPOINTMENT_TIME, Schema

MISSING = "(missing)"  # the category of a blank categorical covariate
TRUE_TEXT = ("1", "yes", "y", "true", "t")
FALSE_TEXT = ("0", "no", "n", "false", "f")
GENDER_TEXT = {"F": ("f", "female", "woman", "w", "fem", "feminino", "femme"),
               "M": ("m", "male", "man", "masculino", "homme", "h")}
# ISO 8601: the date, then optionally a time with optional seconds and fraction, then an optional offset.
ISO_PATTERN = r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
ISO_EXAMPLE = "an ISO 8601 date or date-time like 2016-04-29T08:30:00"


class Misfit(Exception):
    """A value of the export that does not fit its schema: (column, row index, text, what)."""

    def __init__(self, column: str, index: int, text, what: str):
        super().__init__(column, index, text, what)
        self.column, self.index, self.text, self.what = column, index, text, what


def _stripped(text: pl.DataFrame, column: str) -> pl.Series:
    return text[column].str.strip_chars().replace("", None)


def _first(mask: pl.Series) -> int:
    return int(mask.arg_true()[0])


def _present(values: pl.Series, column: str) -> pl.Series:
    if values.null_count():
        raise Misfit(column, _first(values.is_null()), None, "a value (it is blank)")
    return values


def parse_datetime(values: pl.Series, column: str, fmt: str | None) -> pl.Series:
    """(n,) Datetime of a text column, by ``fmt`` or as ISO 8601 (offset dropped); raises
    :class:`Misfit` at the first value that does not parse or lies outside years 1900-2100."""
    values = _present(values, column)
    if fmt is None:
        parts = values.str.extract_groups(ISO_PATTERN)
        date = parts.struct.field("1")
        clock = [parts.struct.field(str(i)).fill_null("00") for i in (2, 3, 4)]
        joined = pl.select(pl.concat_str(pl.lit(date), pl.lit("T"), pl.lit(clock[0]), pl.lit(":"), pl.lit(clock[1]),
                                         pl.lit(":"), pl.lit(clock[2])).alias("t"))["t"]
        parsed = joined.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
        what = ISO_EXAMPLE
    else:
        parsed = values.str.to_datetime(fmt, strict=False, time_unit="us")
        what = f"a date matching the format {fmt!r}"
    bad = parsed.is_null()
    if bad.any():
        index = _first(bad)
        raise Misfit(column, index, values[index], what)
    years = parsed.dt.year()
    outside = (years < YEAR_RANGE[0]) | (years > YEAR_RANGE[1])
    if outside.any():
        index = _first(outside)
        raise Misfit(column, index, values[index], f"a date in the years {YEAR_RANGE[0]}..{YEAR_RANGE[1]}")
    return parsed.dt.replace_time_zone(None) if parsed.dtype.time_zone else parsed


def parse_hour(values: pl.Series, column: str, fmt: str | None) -> pl.Series:
    """(n,) Float64 hour of day (8.5 is 08:30) of a time column: ``fmt``, else ``HH:MM[:SS]``,
    else an ISO date-time."""
    values = _present(values, column)
    if fmt is None:
        clock = values.str.extract_groups(r"^(\d{1,2}):(\d{2})(?::\d{2}(?:[.,]\d+)?)?$")
        hour, minute = (clock.struct.field(k).cast(pl.Int32) for k in ("1", "2"))
        if hour.null_count() == 0 and not ((hour > 23) | (minute > 59)).any():
            return (hour + minute / 60).cast(pl.Float64)
        stamp = parse_datetime(values, column, None)
    else:
        stamp = parse_datetime(values, column, fmt) if any(d in fmt for d in ("%d", "%Y", "%m")) else None
        if stamp is None:
            parsed = values.str.to_time(fmt, strict=False)
            if parsed.is_null().any():
                index = _first(parsed.is_null())
                raise Misfit(column, index, values[index], f"a time matching the format {fmt!r}")
            return (parsed.dt.hour() + parsed.dt.minute() / 60).cast(pl.Float64)
    return (stamp.dt.hour() + stamp.dt.minute() / 60).cast(pl.Float64)


def parse_flag(values: pl.Series, column: str) -> pl.Series:
    """(n,) Int8 0/1 of a yes/no column (0/1, yes/no, y/n, true/false, any case)."""
    lower = _present(values, column).str.to_lowercase()
    flag = pl.select(pl.when(pl.lit(lower).is_in(TRUE_TEXT)).then(1).when(pl.lit(lower).is_in(FALSE_TEXT)).then(0)
                     .cast(pl.Int8).alias("f"))["f"]
    if flag.is_null().any():
        index = _first(flag.is_null())
        raise Misfit(column, index, values[index], "a yes/no value (0/1, yes/no, true/false)")
    return flag


def parse_int(values: pl.Series, column: str, low: int, high: int) -> pl.Series:
    parsed = _present(values, column).cast(pl.Int64, strict=False)
    if parsed.is_null().any():
        index = _first(parsed.is_null())
        raise Misfit(column, index, values[index], "an integer")
    outside = (parsed < low) | (parsed > high)
    if outside.any():
        index = _first(outside)
        raise Misfit(column, index, values[index], f"an integer in {low}..{high}")
    return parsed


def parse_number(values: pl.Series, column: str) -> tuple[pl.Series, int]:
    """(n,) Float64 of a numeric covariate (blank: 0), and the count of blanks."""
    parsed = values.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
    bad = parsed.is_null() & values.is_not_null()
    if bad.any():
        index = _first(bad)
        raise Misfit(column, index, values[index], "a number")
    return parsed.fill_null(0.0), int(values.null_count())


def ids(values: pl.Series, column: str) -> pl.Series:
    """Appointment IDs: Int64 when every one is an integer, else the text."""
    values = _present(values, column)
    as_int = values.cast(pl.Int64, strict=False)
    return as_int if as_int.null_count() == 0 else values


def genders(values: pl.Series) -> pl.Series:
    lower = values.str.to_lowercase()
    out = pl.select(pl.when(pl.lit(lower).is_in(GENDER_TEXT["F"])).then(pl.lit("F"))
                    .when(pl.lit(lower).is_in(GENDER_TEXT["M"])).then(pl.lit("M")).otherwise(pl.lit("U")).alias("g"))
    return out["g"]


def age_at(birth: pl.Series, day: pl.Series) -> pl.Series:
    """(n,) Int64 whole years from ``birth`` (Datetime) to ``day`` (Date)."""
    born = birth.dt.date()
    years = day.dt.year() - born.dt.year()
    before_birthday = (day.dt.month() < born.dt.month()) | (
        (day.dt.month() == born.dt.month()) & (day.dt.day() < born.dt.day()))
    return (years - before_birthday.cast(pl.Int32)).cast(pl.Int64)


def outcome_codes(values: pl.Series, schema: Schema) -> tuple[pl.Series, pl.Series, dict[str, int]]:
    """(labels, kept, left_out): labels Int8 (1 missed, 0 attended, null pending), the rows kept
    (every row but the left-out ones) and the count of rows left out per value.

    Raises :class:`Misfit` at a value that is not declared when the schema lists its ``excluded``
    values (then every value must be declared), or at a blank outcome."""
    values = _present(values, schema.columns["outcome"])
    known = {**{v: 1 for v in schema.missed}, **{v: 0 for v in schema.attended}}
    labels = values.replace_strict(known, default=None, return_dtype=pl.Int8)
    pending = values.is_in(list(schema.pending))
    left_out = labels.is_null() & ~pending
    if schema.excluded is not None:
        undeclared = left_out & ~values.is_in(list(schema.excluded))
        if undeclared.any():
            index = _first(undeclared)
            declared = [*schema.missed, *schema.attended, *schema.pending, *schema.excluded]
            raise Misfit(schema.columns["outcome"], index, values[index],
                         f"a declared outcome ({', '.join(map(repr, declared))})")
    counts = values.filter(left_out).value_counts(sort=True)
    return labels, ~left_out, {str(v): int(n) for v, n in counts.iter_rows()}


def mapped_columns(schema: Schema, require_label: bool) -> tuple[str, ...]:
    """The export's columns a file must have to be read through ``schema`` (the outcome only
    when labels are required)."""
    roles = [c for role, c in schema.columns.items() if role != "outcome" or require_label]
    return tuple(dict.fromkeys([*roles, *schema.covariates]))


def export_frame(text: pl.DataFrame, schema: Schema, require_label: bool) -> tuple[pl.DataFrame, list[tuple]]:
    """The internal frame of an export's all-text frame ``text`` (n rows) read through ``schema``,
    and the quirks counted as ``(name, rows, handling)``.

    Returns the rows kept (every row but those whose outcome is left out, and when
    ``require_label`` those still pending), in file order, with the columns :data:`S.PATIENT_ID`
    (text, stripped; the loader writes the keys), :data:`S.APPOINTMENT_ID`, :data:`S.SCHEDULED_DAY`
    and :data:`S.APPOINTMENT_DAY` (Datetime), the derived dates, :data:`S.TARGET` (Int8, null while
    pending) when the outcome is read, each optional role present (``Gender`` F/M/U, ``Age`` Int16
    in years, ``SMS_received`` Int8, ``appointment_time`` Float64 hour of day), and each covariate
    under its own name (flags Int8, categorical text, numeric Float64).
    Raises :class:`Misfit` at the first value that does not fit.
    """
    roles, fmt = schema.columns, schema.formats
    columns = {S.PATIENT_ID: _present(_stripped(text, roles["patient_id"]), roles["patient_id"]),
               S.APPOINTMENT_ID: ids(_stripped(text, roles["appointment_id"]), roles["appointment_id"])}
    booked = parse_datetime(_stripped(text, roles["booked_at"]), roles["booked_at"], fmt.get("booked_at"))
    day = parse_datetime(_stripped(text, roles["appointment_date"]), roles["appointment_date"],
                         fmt.get("appointment_date"))
    columns[S.SCHEDULED_DAY], columns[S.APPOINTMENT_DAY] = booked, day
    quirks = []
    if "gender" in roles:
        columns[S.GENDER] = genders(_stripped(text, roles["gender"]).fill_null(""))
    if "age" in roles:
        age = parse_int(_stripped(text, roles["age"]), roles["age"], *AGE_RANGE)
        quirks += [("age -1", int((age < 0).sum()), "read as age 0"),
                   (f"age over {AGE_CAP}", int((age > AGE_CAP).sum()), f"capped at {AGE_CAP}")]
        columns[S.AGE] = age.clip(0, AGE_CAP).cast(pl.Int16)
    elif "birth_date" in roles:
        born = parse_datetime(_stripped(text, roles["birth_date"]), roles["birth_date"], fmt.get("birth_date"))
        age = age_at(born, day.dt.date())
        quirks.append(("born after the appointment", int((age < 0).sum()), "read as age 0"))
        columns[S.AGE] = age.clip(0, AGE_CAP).cast(pl.Int16)
    if "reminder_sent" in roles:
        columns[S.SMS_RECEIVED] = parse_flag(_stripped(text, roles["reminder_sent"]), roles["reminder_sent"])
    if "appointment_time" in roles:
        columns[APPOINTMENT_TIME] = parse_hour(_stripped(text, roles["appointment_time"]),
                                               roles["appointment_time"], fmt.get("appointment_time"))
    for column in schema.flags:
        columns[column] = parse_flag(_stripped(text, column), column)
    for column in schema.categorical:
        values = _stripped(text, column)
        if values.null_count():
            quirks.append((f"{column} blank", values.null_count(), f"read as {MISSING!r}"))
        columns[column] = values.fill_null(MISSING)
    for column in schema.numeric:
        columns[column], blanks = parse_number(_stripped(text, column), column)
        if blanks:
            quirks.append((f"{column} blank", blanks, "read as 0"))
    scheduled_date, appointment_date = booked.dt.date(), day.dt.date()
    columns[S.SCHEDULED_DATE], columns[S.APPOINTMENT_DATE] = scheduled_date, appointment_date
    quirks.append(("appointment dated before it was booked", int((appointment_date < scheduled_date).sum()),
                   "lead time set to 0 days (same day)"))
    kept = None
    if "outcome" in roles and roles["outcome"] in text.columns:
        labels, kept, left_out = outcome_codes(_stripped(text, roles["outcome"]), schema)
        columns[S.TARGET] = labels
        quirks += [(f"outcome {value!r}", count, "left out (neither missed nor attended)")
                   for value, count in left_out.items()]
        if require_label:
            pending = kept & labels.is_null()
            if pending.any():
                quirks.append(("outcome still pending", int(pending.sum()), "not learnt from"))
            kept = kept & ~pending
    frame = pl.DataFrame([values.rename(name) for name, values in columns.items()])
    if kept is not None and not kept.all():
        frame = frame.filter(kept)
    return frame, quirks
