"""The rules the columns of an appointments file are read by, each stated once.

:data:`COLUMN_RULES` is the Kaggle layout's table: for every column, how its text is typed
(``kind``), which values are valid (``valid``, an inclusive range, of the year for a date-time;
``choices``, the texts allowed), what it is stored as (``dtype``, ``output``) and how a valid value is
cleaned (``clip``). The loader derives both of its paths from it (:func:`noshow.data.loader.typed_frame`):
the one-pass polars expressions that type a clean file at once, and the column-by-column checks
that name the first bad value's column and file line. A clinic's export read through its schema
file (:mod:`noshow.data.roles`) has its own parsers but the same bounds, defined here.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from noshow.data import schema as S

AGE_RANGE = (-1, 130)  # ages accepted (the Kaggle file holds one -1, read as 0)
AGE_CAP = 100  # a valid age above this is capped (7 of the Kaggle file's are)
# Years accepted in a date: polars parses years 0..9999 but Python's dates (and any calendar
# arithmetic) start at year 1; an appointment system's dates are never that far out.
YEAR_RANGE = (1900, 2100)
MAX_ID_DIGITS = 40  # a PatientId in exponent form may spell at most this many digits

KINDS = ("text", "int", "datetime", "choice")
# What a value of each kind must look like, as the error message says it.
EXPECTED = {"int": "an integer", "datetime": "a date-time like 2016-04-29T18:38:08Z"}


@dataclass(frozen=True)
class ColumnRule:
    """How one column is read: typed as ``kind``, checked against ``valid`` or ``choices``, then
    clipped to ``clip``, cast to ``dtype`` (a ``choices`` dict maps each text to its code) and stored
    under ``output`` (default: the column's own name)."""

    column: str
    kind: str
    valid: tuple[int, int] | None = None
    choices: tuple[str, ...] | dict[str, int] | None = None
    dtype: type[pl.DataType] | None = None
    clip: tuple[int, int] | None = None
    output: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS or (self.kind == "choice") != (self.choices is not None):
            raise ValueError(f"rule of {self.column!r}: kind {self.kind!r} with choices {self.choices!r}")

    @property
    def name(self) -> str:
        return self.output or self.column


# The Kaggle layout, in the order of the typed frame's columns (each text value is stripped first).
COLUMN_RULES = (
    ColumnRule(S.PATIENT_ID, "text"),
    ColumnRule(S.APPOINTMENT_ID, "int"),
    ColumnRule(S.GENDER, "choice", choices=S.GENDER_VALUES),
    ColumnRule(S.SCHEDULED_DAY, "datetime", valid=YEAR_RANGE),
    ColumnRule(S.APPOINTMENT_DAY, "datetime", valid=YEAR_RANGE),
    ColumnRule(S.NEIGHBOURHOOD, "text"),
    *(ColumnRule(c, "int", valid=(0, 1), dtype=pl.Int8) for c in S.FLAG_COLUMNS),
    ColumnRule(S.HANDICAP, "int", valid=(0, S.HANDICAP_MAX), dtype=pl.Int8),
    ColumnRule(S.AGE, "int", valid=AGE_RANGE, dtype=pl.Int16, clip=(0, AGE_CAP)),
)
# The outcome, when the file has it: "Yes" (a no-show) is 1.
LABEL_RULE = ColumnRule(S.LABEL, "choice", choices=S.LABEL_VALUES, dtype=pl.Int8, output=S.TARGET)
