"""A clinic's own export, described by a schema file (TOML).

Without a schema file the Kaggle layout of :mod:`noshow.data.schema` applies, read by the loader's
own strict parser. A schema file maps *roles* (what a column means) to the export's own column
names; :mod:`noshow.data.roles` then reads the export into the same internal frame (each role's
internal column is the Kaggle name), so features, training and scoring run one code path for every
layout. Covariates (the export's other columns used as features) keep their own names.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path

from noshow.data.schema import (
    AGE,
    APPOINTMENT_DATE,
    APPOINTMENT_DAY,
    APPOINTMENT_ID,
    GENDER,
    PATIENT_ID,
    PATIENT_KEY,
    SCHEDULED_DATE,
    SCHEDULED_DAY,
    SMS_RECEIVED,
    TARGET,
    TRUE_PROBABILITY,
)
from noshow.errors import NoshowError

REQUIRED_ROLES = ("appointment_id", "patient_id", "booked_at", "appointment_date")
OUTCOME_ROLE = "outcome"  # needed to train or evaluate, not to score
OPTIONAL_ROLES = ("appointment_time", "age", "birth_date", "gender", "reminder_sent")
ROLES = (*REQUIRED_ROLES, OUTCOME_ROLE, *OPTIONAL_ROLES)
# Where each role lands in the internal frame (birth_date becomes AGE; appointment_time its own column).
APPOINTMENT_TIME = "appointment_time"
ROLE_COLUMNS = {"appointment_id": APPOINTMENT_ID, "patient_id": PATIENT_ID, "booked_at": SCHEDULED_DAY,
                "appointment_date": APPOINTMENT_DAY, "outcome": TARGET, "appointment_time": APPOINTMENT_TIME,
                "age": AGE, "birth_date": AGE, "gender": GENDER, "reminder_sent": SMS_RECEIVED}
DATE_ROLES = ("booked_at", "appointment_date", "appointment_time", "birth_date")
OUTCOME_KINDS = ("missed", "attended", "pending", "excluded")
COVARIATE_KINDS = ("categorical", "flags", "numeric")
# The one pair of roles that may share a column: a date-time column gives the day and the hour.
SHARED_ROLES = frozenset({"appointment_date", "appointment_time"})
SECTIONS = {"columns": ROLES, "outcome": OUTCOME_KINDS, "formats": DATE_ROLES, "covariates": COVARIATE_KINDS,
            "audit": ("groups",)}
TOP_LEVEL = ("name", *SECTIONS)


@dataclasses.dataclass(frozen=True)
class Schema:
    """What a clinic's export holds and where.

    ``columns``: role -> the export's column; ``missed`` / ``attended``: outcome values of a no-show
    and a kept appointment; ``pending``: values of an appointment still to come (scored, not learnt
    from); ``excluded``: values left out of training and scoring (cancelled, rescheduled), counted.
    When ``excluded`` is not given, every other value is excluded and counted. ``formats``: role ->
    strptime format (ISO 8601 when absent). ``categorical``, ``flags``, ``numeric``: the export's
    other columns used as features. ``audit``: the fairness audit's attributes (columns or roles).
    """

    columns: dict
    missed: tuple = ()
    attended: tuple = ()
    pending: tuple = ()
    excluded: tuple | None = None
    formats: dict = dataclasses.field(default_factory=dict)
    categorical: tuple = ()
    flags: tuple = ()
    numeric: tuple = ()
    audit: tuple = ()
    name: str = "custom"

    @property
    def covariates(self) -> tuple:
        """Every covariate column in feature order: flags, then categorical, then numeric."""
        return (*self.flags, *self.categorical, *self.numeric)

    def has(self, role: str) -> bool:
        return role in self.columns

    def to_dict(self) -> dict:
        """Plain JSON (the model file records it)."""
        return {"name": self.name, "columns": dict(self.columns),
                "outcome": {"missed": list(self.missed), "attended": list(self.attended),
                            "pending": list(self.pending),
                            **({"excluded": list(self.excluded)} if self.excluded is not None else {})},
                "formats": dict(self.formats),
                "covariates": {"categorical": list(self.categorical), "flags": list(self.flags),
                               "numeric": list(self.numeric)},
                "audit": {"groups": list(self.audit)}}

    @classmethod
    def from_dict(cls, data: dict, where: str = "schema") -> "Schema":
        """Build and check a schema from the sections of a schema file (or :meth:`to_dict`)."""
        return _checked_schema(data, where)


def _closest(word: str, known) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"


def _strings(value, where: str) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise NoshowError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


def _section(data: dict, name: str, where: str) -> dict:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise NoshowError(f"{where}: [{name}] must be a table")
    for key in section:
        if key not in SECTIONS[name]:
            raise NoshowError(f"{where}: unknown key '{key}' in [{name}]{_closest(key, SECTIONS[name])}")
    return section


def _checked_schema(data: dict, where: str) -> Schema:
    if not isinstance(data, dict):
        raise NoshowError(f"{where}: a schema is a table of sections")
    for key in data:
        if key not in TOP_LEVEL:
            raise NoshowError(f"{where}: unknown section '{key}'{_closest(key, TOP_LEVEL)}")
    columns = {}
    for role, column in _section(data, "columns", where).items():
        if not isinstance(column, str) or not column.strip():
            raise NoshowError(f"{where}: [columns] {role} must name a column, got {column!r}")
        columns[role] = column.strip()
    missing = [r for r in REQUIRED_ROLES if r not in columns]
    if missing:
        raise NoshowError(f"{where}: [columns] lacks the required role{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)}")
    if "age" in columns and "birth_date" in columns:
        raise NoshowError(f"{where}: [columns] gives both age and birth_date; give one")
    by_column: dict[str, str] = {}
    for role, column in columns.items():
        other = by_column.get(column)
        if other is not None and {other, role} != SHARED_ROLES:
            raise NoshowError(f"{where}: roles {other} and {role} are both mapped to column '{column}'")
        by_column[column] = role
    outcome = {k: _strings(v, f"{where}: [outcome] {k}") for k, v in _section(data, "outcome", where).items()}
    if "outcome" in columns and not (outcome.get("missed") and outcome.get("attended")):
        raise NoshowError(f"{where}: [outcome] must list the values meaning missed and attended "
                           f"(e.g. missed = [\"No Show\"], attended = [\"Attended\"])")
    seen: dict[str, str] = {}
    for kind in OUTCOME_KINDS:
        for value in outcome.get(kind, ()):
            if value in seen:
                raise NoshowError(f"{where}: outcome value '{value}' is listed under both {seen[value]} and {kind}")
            seen[value] = kind
    formats = {}
    for role, text in _section(data, "formats", where).items():
        if not isinstance(text, str) or "%" not in text:
            raise NoshowError(f"{where}: [formats] {role} must be a strptime format like \"%d/%m/%Y\", got {text!r}")
        formats[role] = text
    covariates = {k: _strings(v, f"{where}: [covariates] {k}") for k, v in _section(data, "covariates", where).items()}
    declared: dict[str, str] = {}
    for kind in COVARIATE_KINDS:
        for column in covariates.get(kind, ()):
            if column in declared:
                raise NoshowError(f"{where}: covariate '{column}' is declared twice ({declared[column]} and {kind})")
            if column in by_column and column not in declared:
                raise NoshowError(f"{where}: covariate '{column}' is already the {by_column[column]} role's column")
            if column in RESERVED:
                raise NoshowError(f"{where}: covariate '{column}' has the name of a column noshow derives; "
                                   f"map it to its role under [columns] instead")
            declared[column] = kind
    audit = _strings(_section(data, "audit", where).get("groups", []), f"{where}: [audit] groups") \
        if _section(data, "audit", where).get("groups") else ()
    for group in audit:
        if group not in declared and group not in by_column:
            raise NoshowError(f"{where}: [audit] group '{group}' is neither a covariate nor a role's column"
                               f"{_closest(group, [*declared, *by_column])}")
    name = data.get("name", "custom")
    if not isinstance(name, str):
        raise NoshowError(f"{where}: name must be a string")
    return Schema(columns=columns, missed=outcome.get("missed", ()), attended=outcome.get("attended", ()),
                  pending=outcome.get("pending", ()), excluded=outcome.get("excluded"), formats=formats,
                  categorical=covariates.get("categorical", ()), flags=covariates.get("flags", ()),
                  numeric=covariates.get("numeric", ()), audit=audit, name=name)


# Internal column names a covariate may not take (the frame and the raw features hold them already).
RESERVED = frozenset({*ROLE_COLUMNS.values(), PATIENT_KEY, SCHEDULED_DATE, APPOINTMENT_DATE, TRUE_PROBABILITY,
                      "lead_days", "age", "booking_hour", "appointment_hour", "same_day", "male", "weekday",
                      "booking_weekday", "prior_appointments", "prior_no_shows", "prior_no_show_rate",
                      "days_since_previous", "days_since_first", "same_day_appointments",
                      "session_appointments", "booked_ahead", "first_appointment", "previous_no_show"})


def read_schema(path) -> Schema:
    """Read and check a schema file (TOML); every problem is a one-line :class:`NoshowError`."""
    path = Path(path)
    if not path.is_file():
        raise NoshowError(f"{path}: schema file not found")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise NoshowError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise NoshowError(f"{path}: not a valid TOML file ({exc})") from None
    return _checked_schema(data, str(path))
