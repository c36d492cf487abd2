"""The API's request and response shapes, for its OpenAPI description.

Built from the names defined once elsewhere (:mod:`noshow.data.schema`'s columns,
:data:`~noshow.clinic.scoring.SCORE_COLUMNS`). Request values are validated by the loader, as a
file's are, so that a bad value gets the command line's message; these models only describe them.
"""

from __future__ import annotations

import datetime

from pydantic import BaseModel, ConfigDict, Field, create_model

from noshow.clinic import scoring
from noshow.data import schema as S

# One appointment as the Kaggle file writes it (the example shown in the API's description).
EXAMPLE_APPOINTMENT = {
    S.PATIENT_ID: "29872499824296", S.APPOINTMENT_ID: 5642903, S.GENDER: "F",
    S.SCHEDULED_DAY: "2016-04-29T18:38:08Z", S.APPOINTMENT_DAY: "2016-04-29T00:00:00Z", S.AGE: 62,
    S.NEIGHBOURHOOD: "JARDIM DA PENHA", **{c: 0 for c in S.CONDITION_FLAGS}, S.HANDICAP: 0, S.SMS_RECEIVED: 0,
}
assert tuple(EXAMPLE_APPOINTMENT) == S.FEATURE_COLUMNS

Value = int | float | str | None

Appointment = create_model(
    "Appointment", __config__=ConfigDict(extra="allow", json_schema_extra={"example": EXAMPLE_APPOINTMENT}),
    **{column: (Value, Field(description=f"as in the file's {column} column")) for column in S.FEATURE_COLUMNS},
)

_SCORE_TYPES = {S.APPOINTMENT_ID: int, S.PATIENT_ID: str, S.APPOINTMENT_DAY: datetime.date,
                scoring.PROBABILITY: float, scoring.RANK: int, scoring.FLAGGED: int, scoring.REASONS: str}
assert tuple(_SCORE_TYPES) == scoring.SCORE_COLUMNS
ScoreRow = create_model("ScoreRow", **{column: (kind, ...) for column, kind in _SCORE_TYPES.items()})


class Scores(BaseModel):
    """``POST /score``'s answer: one row per appointment sent, in its order."""

    policy: str = Field(description="the flagging policy's name")
    rule: str = Field(description="the policy in words, with its threshold or parameters")
    scores: list[ScoreRow]


class CallList(BaseModel):
    """``POST /call-list``'s JSON answer: the flagged appointments by day, highest risk first."""

    rows: int
    days: int
    flagged: int
    policy: str
    rule: str
    expected_net_benefit: float | None = Field(None, description="cost policy only: sum of p x E x V - C over the list")
    day: str | None = Field(description="the day asked for, or null for every day of the file")
    days_in_file: list[dict]
    appointments: list[ScoreRow] = Field(description="flagged appointments, by day then rank")


class Error(BaseModel):
    """Every refusal: what is wrong and where, as the command line says it."""

    error: str


class Health(BaseModel):
    status: str
