"""The service's work, without a web framework: what ``POST /score`` and ``POST /call-list`` do.

A :class:`Service` loads and verifies the model once (as ``noshow predict`` does), reads the
history file once and indexes it by patient, then scores each request with
:func:`noshow.clinic.scoring.score`, the function ``predict`` calls, so that the service and the
command give the same numbers. Only the rows of the history that belong to a request's patients
are passed along: history features are computed per patient, so this changes nothing but the time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from dataclasses import dataclass

import numpy as np
import polars as pl

from noshow.clinic import policies, scoring
from noshow.data import fhir, loader
from noshow.data import schema as S
from noshow.errors import NoshowError

REQUEST = "request body"  # how a JSON body is named in messages, where a file's path would be
MAX_RECORDS = 100_000
SPAN_LOOKUPS = 1_000  # up to this many patients, a request's history rows are looked up, not scanned for


def parse_json(body: bytes) -> object:
    """The JSON value of a request body; malformed JSON is a :class:`NoshowError`."""
    if not body.strip():
        raise NoshowError(f"{REQUEST}: empty; send one appointment (a JSON object) or a list of them")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise NoshowError(f"{REQUEST}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise NoshowError(f"{REQUEST}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def records_of(value: object) -> list[dict]:
    """The appointments of a parsed JSON body: one object, a list of objects, or
    ``{"appointments": [...]}``."""
    if isinstance(value, dict) and set(value) == {"appointments"}:
        value = value["appointments"]
    records = [value] if isinstance(value, dict) else value
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise NoshowError(f"{REQUEST}: expected an appointment (a JSON object with the file's column names) "
                          f"or a list of them")
    if not records:
        raise NoshowError(f"{REQUEST}: the list holds no appointments")
    if len(records) > MAX_RECORDS:
        raise NoshowError(f"{REQUEST}: {len(records):,} appointments; send at most {MAX_RECORDS:,} at a time")
    return records


def _policy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    policies.add_policy_arguments(parser)
    return parser


POLICY_PARSER = _policy_parser()


def policy_parameters() -> list[argparse.Action]:
    """The policy flags' argparse actions (name in ``dest``, ``type`` and ``help``), for the API's
    description; the query parameters are named after :data:`~noshow.clinic.policies.POLICY_FLAGS`."""
    return [a for a in POLICY_PARSER._actions if a.dest in policies.POLICY_FLAGS]


def policy_from_query(query: dict[str, str]) -> policies.Policy:
    """The policy that query parameters named after the CLI's flags ask for (``calls_per_day=20``,
    or ``calls-per-day``); values are read, checked and reported as the CLI reads its flags."""
    argv = []
    for name, value in query.items():
        flag = name.replace("-", "_")
        if flag in policies.POLICY_FLAGS:
            argv += [f"--{flag.replace('_', '-')}", value]
    try:
        args = POLICY_PARSER.parse_args(argv)
    except argparse.ArgumentError as exc:
        raise NoshowError(str(exc)) from None
    return policies.make_policy(**{name: getattr(args, name) for name in policies.POLICY_FLAGS})


@dataclass(frozen=True)
class Settings:
    """What a service is started with (the ``noshow serve`` flags that reach the application)."""

    model_path: str
    history_path: str | None = None
    backend: str = "numpy"
    device: str = "cpu"
    token: str | None = None
    max_body_mb: float = 10.0
    db: str | None = None  # the clinic's store (noshow.store): lists issued and calls recorded there
    holdout_share: float | None = None  # with db: the randomised holdout of each day's flagged appointments
    holdout_seed: int | None = None

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * (1 << 20))


class Service:
    """A loaded model and history, scoring requests read-only (safe to share between threads)."""

    def __init__(self, settings: Settings):
        from noshow.model import TrainedModel

        self.settings = settings
        self.model = TrainedModel.load(settings.model_path)  # verified as predict verifies it
        single_threaded(settings.backend)
        self.store, self._model_facts = None, None
        if settings.db:
            from noshow.store.database import open_store
            from noshow.store.holdout import check_share

            check_share(settings.holdout_share, settings.holdout_seed)
            self.store = open_store(settings.db)
        self.schema = self.model.schema  # how requests and the history are read (None: the Kaggle layout)
        self.history = (loader.load(settings.history_path, require_label=False, schema=self.schema)
                        if settings.history_path else None)
        self._history_by_patient, self._spans = None, {}
        if self.history is not None:
            # Sorted by patient once, with where each patient's rows start and how many there are:
            # a request's patients' rows are then taken without scanning the whole history.
            self._history_by_patient = self.history.frame.sort(S.PATIENT_KEY, maintain_order=True)
            spans = (self._history_by_patient.with_row_index().group_by(S.PATIENT_KEY)
                     .agg(pl.col("index").first(), pl.len()))
            self._spans = {key: (start, n) for key, start, n in spans.iter_rows()}

    def history_of(self, data: loader.Appointments) -> loader.Appointments | None:
        """The history rows of ``data``'s patients (all that their history features depend on)."""
        if self._history_by_patient is None:
            return None
        keys = data.frame[S.PATIENT_KEY].unique()
        if len(keys) > SPAN_LOOKUPS:
            rows = self._history_by_patient.filter(pl.col(S.PATIENT_KEY).is_in(keys.implode()))
        else:
            spans = [self._spans[k] for k in keys.to_list() if k in self._spans]
            taken = np.concatenate([np.arange(start, start + n) for start, n in spans]) if spans else np.zeros(0, np.int64)
            rows = self._history_by_patient[taken]
        return loader.Appointments(rows, self.history.source, self.history.sha256)

    def score(self, data: loader.Appointments, policy: policies.Policy | None = None,
              history: loader.Appointments | None = None) -> pl.DataFrame:
        """:func:`noshow.clinic.scoring.score` of ``data`` with the service's model, backend and
        history (plus ``history``, e.g. the rest of an uploaded file)."""
        known = self.history_of(data)
        if history is not None and known is not None:
            both = pl.concat([known.frame, history.frame], how="diagonal_relaxed").unique(S.APPOINTMENT_ID, keep="first",
                                                                                            maintain_order=True)
            known = loader.Appointments(both, history.source, history.sha256)
        elif history is not None:
            known = history
        return scoring.score(self.model, data, known, policy, self.settings.backend, self.settings.device)

    def appointments_of_json(self, body: bytes) -> loader.Appointments:
        """A JSON body's appointments: records with the file's column names, or a FHIR ``Bundle``
        of Appointment and Patient resources; read through the model's schema and checked to fit it."""
        value = parse_json(body)
        if fhir.is_bundle(value):
            data = loader.load_bundle(value, REQUEST, schema=self.schema)
        else:
            data = loader.load_records(records_of(value), REQUEST, schema=self.schema)
        self.model.check_fits(data)
        return data

    def score_json(self, body: bytes, policy: policies.Policy | None = None) -> dict:
        """``POST /score``: the scores of the appointments in a JSON body, in its order."""
        data = self.appointments_of_json(body)
        scores = self.score(data, policy)
        policy = policy or policies.MaxF1()
        return {"policy": policy.name, "rule": policy.describe(self.model.threshold), "scores": rows_json(scores)}

    def call_list(self, data: loader.Appointments, policy: policies.Policy | None, day: str | None = None,
                  user: str = "anonymous") -> tuple[pl.DataFrame, dict]:
        """``POST /call-list``: the flagged appointments of ``data`` (of ``day`` only when given,
        the file's other rows then counting as history), by day and rank, with a summary. With a
        store, the lists are recorded as issued by ``user`` (holdout and do-not-call applied)."""
        days = (data.frame.group_by(S.APPOINTMENT_DATE).len().sort(S.APPOINTMENT_DATE))
        history = None
        if day:
            chosen = _parse_day(day)
            rows = data.frame.filter(pl.col(S.APPOINTMENT_DATE) == chosen)
            if rows.height == 0:
                raise NoshowError(f"{data.source}: no appointment on {day} (the file has "
                                  f"{days[S.APPOINTMENT_DATE].min()} to {days[S.APPOINTMENT_DATE].max()})")
            history, data = data, loader.Appointments(rows, data.source, data.sha256)
        scores = self.score(data, policy, history)
        issued = self.issue(scores, data, policy, user) if self.store is not None else None
        scores = issued.scores if issued else scores
        info = scoring.summary(scores, policy, self.model.threshold)
        if issued:
            info.update(held_out=issued.held_out, do_not_call=issued.do_not_call, already_called=issued.already_called)
        info["days_in_file"] = [{"day": str(d), "appointments": n} for d, n in days.iter_rows()]
        info["day"] = day or None
        listed = scores.filter(pl.col(scoring.FLAGGED) == 1).sort(S.APPOINTMENT_DAY, scoring.RANK)
        return listed, info

    def issue(self, scores: pl.DataFrame, data: loader.Appointments, policy: policies.Policy | None, user: str):
        """Record ``scores`` in the store as the lists ``user`` was given (:func:`noshow.store.repository.issue_lists`)."""
        from noshow.store.repository import ModelFacts, issue_lists

        policy = policy or policies.MaxF1()
        if self._model_facts is None:
            self._model_facts = ModelFacts.of(self.settings.model_path, self.model)
        return issue_lists(self.store, scores, self._model_facts, policy.name,
                           policy.describe(self.model.threshold), user, data.sha256,
                           self.settings.holdout_share, self.settings.holdout_seed)


def single_threaded(backend: str) -> None:
    """One thread per request for the maths: a request holds a few rows, where more threads only
    add overhead, and requests already run side by side (threadpool, workers)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if backend == "torch":
        import torch

        torch.set_num_threads(1)


def _parse_day(day: str):
    import datetime

    try:
        return datetime.date.fromisoformat(day)
    except ValueError:
        raise NoshowError(f"day: {day!r} is not a date like 2016-06-08") from None


def rows_json(scores: pl.DataFrame) -> list[dict]:
    """Score rows as JSON-ready dicts (dates as ISO text), columns as :data:`SCORE_COLUMNS`."""
    return scores.with_columns(pl.col(S.APPOINTMENT_DAY).cast(pl.String)).to_dicts()


def rows_csv(scores: pl.DataFrame) -> str:
    """Score rows as the CSV ``noshow predict`` writes."""
    buffer = io.StringIO()
    scores.write_csv(buffer)
    return buffer.getvalue()


def model_facts(service: Service) -> dict:
    """``GET /model``: the model card's facts, the backend serving it and the default policy."""
    from noshow import __version__
    from noshow.clinic.card import card_facts

    facts = card_facts(service.model, os.path.basename(service.settings.model_path))
    default = policies.MaxF1()
    return {**facts, "noshow_version": __version__, "backend": service.settings.backend,
            "policy": {"name": default.name, "rule": default.describe(service.model.threshold)}}
