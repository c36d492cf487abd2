"""Test oracles: the Kaggle file rewritten as other systems would export the same appointments.

- :func:`write_renamed`: a clinic's CSV export, every column renamed, dates in day/month/year, flags
  as yes/no, the outcome as status words, semicolons between fields; :data:`RENAMED_SCHEMA` reads it.
- :func:`write_fhir`: HL7 FHIR R4 Bulk Data NDJSON (``Appointment.ndjson``, ``Patient.ndjson``).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from noshow.data import loader
from noshow.data import schema as S

RENAMED = {S.PATIENT_ID: "PatientID", S.APPOINTMENT_ID: "ApptID", S.GENDER: "Sex", S.SCHEDULED_DAY: "BookedAt",
           S.APPOINTMENT_DAY: "ApptDate", S.AGE: "AgeYears", S.NEIGHBOURHOOD: "District", S.SCHOLARSHIP: "Bolsa",
           "Hipertension": "HTN", "Diabetes": "DM", "Alcoholism": "Alcohol", S.HANDICAP: "Handicap",
           S.SMS_RECEIVED: "SMS", S.LABEL: "Status"}

RENAMED_SCHEMA = """\
name = "renamed Kaggle"
[columns]
appointment_id = "ApptID"
patient_id = "PatientID"
booked_at = "BookedAt"
appointment_date = "ApptDate"
outcome = "Status"
age = "AgeYears"
gender = "Sex"
reminder_sent = "SMS"
[outcome]
missed = ["No Show"]
attended = ["Attended"]
[formats]
booked_at = "%d/%m/%Y %H:%M:%S"
appointment_date = "%d/%m/%Y"
[covariates]
flags = ["Bolsa", "HTN", "DM", "Alcohol"]
categorical = ["Handicap", "District"]
[audit]
groups = ["Sex", "District"]
"""


def _yes_no(column: str) -> pl.Expr:
    return pl.when(pl.col(column) == "1").then(pl.lit("yes")).otherwise(pl.lit("no")).alias(column)


def renamed_frame(kaggle: str | Path) -> pl.DataFrame:
    """The Kaggle file's text, rewritten (see the module's docstring), every row in file order."""
    text, _ = loader.read_text_frame(kaggle)
    stamp = pl.col(S.SCHEDULED_DAY).str.to_datetime(S.DATETIME_FORMAT)
    day = pl.col(S.APPOINTMENT_DAY).str.to_datetime(S.DATETIME_FORMAT)
    return text.with_columns(
        stamp.dt.strftime("%d/%m/%Y %H:%M:%S").alias(S.SCHEDULED_DAY),
        day.dt.strftime("%d/%m/%Y").alias(S.APPOINTMENT_DAY),
        pl.when(pl.col(S.GENDER) == "F").then(pl.lit("female")).otherwise(pl.lit("male")).alias(S.GENDER),
        *[_yes_no(c) for c in (*S.FLAG_COLUMNS,)],
        pl.col(S.LABEL).replace_strict({"Yes": "No Show", "No": "Attended"}).alias(S.LABEL),
    ).select(*RENAMED).rename(RENAMED)


def write_renamed(kaggle: str | Path, out: str | Path) -> Path:
    renamed_frame(kaggle).write_csv(out, separator=";")
    return Path(out)


def write_schema(text: str, out: str | Path) -> Path:
    Path(out).write_text(text, encoding="utf-8")
    return Path(out)


# --------------------------------------------------------------------------------------------------
# HL7 FHIR R4 Bulk Data NDJSON

# The appointment type each Kaggle row gets (HL7 v2 table 0276), so that a coding reaches the reader.
APPOINTMENT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0276"


def fhir_resources(kaggle: str | Path) -> tuple[list[dict], list[dict]]:
    """The Kaggle file's appointments as FHIR R4 ``Appointment`` resources and its patients as
    ``Patient`` resources: ``status`` noshow/fulfilled, ``created`` the booking time stamp, ``start``
    the day at 00:00Z, the patient as the participant; ``Patient.gender``, ``birthDate`` (1 January
    of the year that makes the patient's first appointment's age right), ``address[0].district``
    the neighbourhood; ``appointmentType`` FOLLOWUP for a recorded handicap, else ROUTINE."""
    data = loader.load(kaggle)
    frame = data.frame
    first = frame.group_by(S.PATIENT_KEY, maintain_order=True).first()
    patients = [{"resourceType": "Patient", "id": _fhir_id(key),
                 "gender": "female" if gender == "F" else "male",
                 "birthDate": f"{day.year - age:04d}-01-01",
                 "address": [{"district": hood}]}
                for key, gender, day, age, hood in first.select(S.PATIENT_KEY, S.GENDER, S.APPOINTMENT_DATE, S.AGE,
                                                                S.NEIGHBOURHOOD).iter_rows()]
    appointments = []
    for key, aid, booked, day, handicap, target in frame.select(
            S.PATIENT_KEY, S.APPOINTMENT_ID, S.SCHEDULED_DAY, S.APPOINTMENT_DATE, S.HANDICAP, S.TARGET).iter_rows():
        code = "FOLLOWUP" if handicap else "ROUTINE"
        appointments.append({
            "resourceType": "Appointment", "id": str(aid), "status": "noshow" if target else "fulfilled",
            "created": booked.strftime("%Y-%m-%dT%H:%M:%SZ"), "start": f"{day.isoformat()}T00:00:00Z",
            "appointmentType": {"coding": [{"system": APPOINTMENT_TYPE, "code": code}]},
            "participant": [{"actor": {"reference": f"Patient/{_fhir_id(key)}"}, "status": "accepted"}]})
    return appointments, patients


def _fhir_id(key: str) -> str:
    return key.replace(".", "-")  # FHIR ids are [A-Za-z0-9-.]{1,64}; kept readable


def write_fhir(kaggle: str | Path, folder: str | Path) -> Path:
    """Write ``Appointment.ndjson`` and ``Patient.ndjson`` of :func:`fhir_resources` to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, resources in zip(("Appointment", "Patient"), fhir_resources(kaggle)):
        with open(folder / f"{name}.ndjson", "w", encoding="utf-8") as out:
            out.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in resources)
    return folder
