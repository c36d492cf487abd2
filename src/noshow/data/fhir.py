"""HL7 FHIR R4 appointments: a Bulk Data export (NDJSON of ``Appointment`` and ``Patient``) as a table.

Every resource is validated against FHIR R4 by ``fhirclient`` (SMART on FHIR's models, generated
from the R4 4.0.1 specification; the optional extra ``noshow[fhir]``): a line that is not JSON, a
resource that lacks a required element, has an element R4 does not define, or a value of the wrong
form stops the load with the file and line. Then each appointment becomes one row of text, read
through :data:`FHIR_SCHEMA`-like schema (:func:`default_schema`) by the same code as any clinic's
CSV export (:mod:`noshow.data.roles`):

- ``Appointment.status``: ``noshow`` missed, ``fulfilled`` attended, ``booked``/``pending``/
  ``proposed`` still to come (scored), every other status left out and counted;
- ``created``: when it was booked; ``start``: the day and the time (the wall-clock time of its
  offset); a file whose every start is at midnight has no time of day;
- the participant whose actor is a ``Patient/<id>`` reference: the patient;
- ``serviceType``, ``specialty`` and ``appointmentType``: the first coding's code (else the text),
  each a categorical covariate when some appointment has it;
- ``Patient.gender``, ``Patient.birthDate`` (the age at the appointment) and ``address[0].district``
  (a categorical covariate).

fhirclient was chosen over ``fhir.resources`` by measured speed on the Kaggle file's 110,527
appointments and 62,299 patients converted to FHIR: 5.5 s and 1.2 s of validation against 7.2 s
and 2.3 s for ``fhir.resources`` 8.3 (whose R4B models are the nearest it has to R4), and because it
models R4 itself.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl

from noshow.data.schema_file import Schema
from noshow.errors import NoshowError

SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl")
MISSED, ATTENDED, PENDING = ("noshow",), ("fulfilled",), ("booked", "pending", "proposed")
CODINGS = ("serviceType", "specialty", "appointmentType")
DISTRICT = "district"
# The flat table's columns, one per element read.
COLUMNS = ("id", "patient", "created", "start", "status", *CODINGS, "gender", "birthDate", DISTRICT)


def sha256(path: str | Path) -> str:
    """SHA-256 of the export: of the file, or of its NDJSON files' names and digests in order."""
    import hashlib

    from noshow.data.loader import file_sha256

    files = _files(Path(path))
    if len(files) == 1 and Path(path).is_file():
        return file_sha256(files[0])
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def is_fhir(path: str | Path) -> bool:
    """Whether ``path`` is a FHIR NDJSON file or a folder of them (not a CSV)."""
    path = Path(path)
    if path.is_dir():
        return True
    return path.name.lower().endswith(SUFFIXES)


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise NoshowError(f"{path}: file or folder not found")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    if not files:
        raise NoshowError(f"{path}: no FHIR NDJSON files (*.ndjson) in the folder")
    return files


def _models():
    try:
        from fhirclient.models.appointment import Appointment
        from fhirclient.models.patient import Patient
    except ImportError:
        raise NoshowError("FHIR input needs fhirclient, an optional extra: pip install 'noshow[fhir]'") from None
    return {"Appointment": Appointment, "Patient": Patient}


def _lines(file: Path):
    opener = gzip.open if file.read_bytes()[:2] == b"\x1f\x8b" else open
    try:
        with opener(file, "rt", encoding="utf-8") as text:
            yield from enumerate(text, start=1)
    except UnicodeDecodeError as exc:
        raise NoshowError(f"{file}: not UTF-8 text ({exc.reason})") from None


def _validated(where: str, resource, models) -> dict | None:
    """``resource`` when it is a valid R4 Appointment or Patient, None for another resource type;
    ``where`` names it in the error otherwise."""
    from fhirclient.models.fhirabstractbase import FHIRValidationError

    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise NoshowError(f"{where}: not a FHIR resource (no resourceType)")
    model = models.get(resource["resourceType"])
    if model is None:
        return None
    try:
        model(resource, strict=True)
    except FHIRValidationError as exc:
        problem = " ".join(str(exc).split())
        raise NoshowError(f"{where}: not a valid FHIR R4 {resource['resourceType']} ({problem[:240]})") from None
    return resource


def resources(path: str | Path):
    """Every ``Appointment`` and ``Patient`` resource of the export, validated: (where, dict),
    ``where`` the file and line. Other resource types (a Bulk Data export holds many) are skipped."""
    models = _models()
    for file in _files(Path(path)):
        for number, line in _lines(file):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as exc:
                raise NoshowError(f"{file}: line {number}: not JSON ({exc.msg})") from None
            if _validated(f"{file}: line {number}", resource, models) is not None:
                yield f"{file}: line {number}", resource


def bundle_resources(bundle: dict, name: str):
    """The ``Appointment`` and ``Patient`` resources of a FHIR ``Bundle`` (a request's body),
    validated: (where, dict), ``where`` the entry's number."""
    models = _models()
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise NoshowError(f"{name}: the Bundle's entry is not a list")
    for number, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if _validated(f"{name}: entry {number}", resource, models) is not None:
            yield f"{name}: entry {number}", resource


def is_bundle(value) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "Bundle"


def _code(concepts) -> str | None:
    """The first coding's code of a CodeableConcept (or a list of them), else its text."""
    if isinstance(concepts, list):
        concepts = concepts[0] if concepts else None
    if not concepts:
        return None
    for coding in concepts.get("coding", []):
        if coding.get("code"):
            return coding["code"]
    return concepts.get("text")


def _patient_of(appointment: dict) -> str | None:
    for participant in appointment.get("participant", []):
        reference = participant.get("actor", {}).get("reference", "")
        if reference.startswith("Patient/"):
            return reference.split("/", 1)[1]
    return None


def flat_table(path: str | Path) -> pl.DataFrame:
    """The export as an all-text frame of :data:`COLUMNS`, one row per appointment in file order.

    An appointment without a patient participant, a ``created`` or a ``start`` is an error
    (noshow needs all three), named by file and line."""
    return table_of(resources(path), str(path))


def table_of(validated, name: str) -> pl.DataFrame:
    """:func:`flat_table` of validated ``(where, resource)`` pairs (:func:`resources`,
    :func:`bundle_resources`)."""
    appointments, patients = [], {}
    for where, resource in validated:
        if resource["resourceType"] == "Patient":
            patients[resource.get("id")] = resource
            continue
        patient = _patient_of(resource)
        for element, value in (("participant.actor (a Patient reference)", patient),
                               ("created", resource.get("created")), ("start", resource.get("start"))):
            if value is None:
                raise NoshowError(f"{where}: Appointment {resource.get('id', '')} lacks {element}")
        appointments.append((resource, patient))
    if not appointments:
        raise NoshowError(f"{name}: no Appointment resources")
    rows = {column: [] for column in COLUMNS}
    for appointment, patient_id in appointments:
        patient = patients.get(patient_id, {})
        address = (patient.get("address") or [{}])[0]
        values = {"id": appointment.get("id"), "patient": patient_id, "created": appointment["created"],
                  "start": appointment["start"], "status": appointment["status"],
                  **{c: _code(appointment.get(c)) for c in CODINGS},
                  "gender": patient.get("gender"), "birthDate": patient.get("birthDate"),
                  DISTRICT: address.get("district")}
        for column in COLUMNS:
            rows[column].append(values[column])
    return pl.DataFrame(rows, schema={c: pl.String for c in COLUMNS})


def default_schema(table: pl.DataFrame) -> Schema:
    """How :func:`flat_table`'s rows are read: the roles above; an appointment time when some
    start is not at midnight; gender and birth date when some patient has them; each coding and
    the district as a categorical covariate when some row has it."""
    def present(column: str) -> bool:
        return table[column].drop_nulls().len() > 0

    columns = {"appointment_id": "id", "patient_id": "patient", "booked_at": "created",
               "appointment_date": "start", "outcome": "status"}
    clock = table["start"].str.extract(r"T(\d{2}:\d{2}(?::\d{2})?)").fill_null("00:00")
    if (clock.str.replace_all(r"[0:]", "") != "").any():  # some start is not at 00:00:00
        columns["appointment_time"] = "start"
    if present("gender"):
        columns["gender"] = "gender"
    if present("birthDate") and table["birthDate"].null_count() == 0:
        columns["birth_date"] = "birthDate"
    categorical = tuple(c for c in (*CODINGS, DISTRICT) if present(c))
    audit = tuple(c for c in ("gender", DISTRICT) if c in columns.values() or c in categorical)
    return Schema(columns=columns, missed=MISSED, attended=ATTENDED, pending=PENDING, categorical=categorical,
                  audit=audit, name="FHIR R4")
