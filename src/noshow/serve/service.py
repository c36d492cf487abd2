"""The service's work, without a web framework: what ``POST /score`` and ``POST /call-list`` do.

A :class:`Service` loads and verifies the model once (as ``noshow predict`` does), reads the
history file once and indexes it by patient, then scores each request with
:func:`noshow.clinic.scoring.score`, the function ``predict`` calls, so that the service and the
command give the same numbers. Only the rows of the history that belong to a request's patients
are passed along: history features are computed per patient, so this changes nothing but the time.
A JSON request of a few appointments in the Kaggle layout takes the few-row path instead
(:meth:`Service.score_few_rows`, :mod:`noshow.data.features_rows`): the same numbers without
polars' fixed cost per call, which for one appointment was the whole request (tested equal on
the real file's rows).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
from dataclasses import dataclass

import numpy as np
import polars as pl

from noshow.clinic import policies, reasons, scoring
from noshow.data import fhir, loader
from noshow.data import schema as S
from noshow.data.features_rows import HistoryIndex, raw_rows, typed_records
from noshow.errors import NoshowError

REQUEST = "request body"  # how a JSON body is named in messages, where a file's path would be
MAX_RECORDS = 100_000
SPAN_LOOKUPS = 1_000  # up to this many patients, a request's history rows are looked up, not scanned for
# Up to this many appointments, a JSON request is scored by the few-row path (no polars call per
# feature); above it polars' per-call cost is small beside the rows' own work.
FEW_ROWS = 1_000


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
        # Grouped by patient once, as frame and arrays: a request's patients' rows are then taken by
        # position, without scanning the whole history.
        self.history_index = HistoryIndex(self.history.frame) if self.history is not None else None

    def history_of(self, data: loader.Appointments) -> loader.Appointments | None:
        """The history rows of ``data``'s patients (all that their history features depend on)."""
        if self.history_index is None:
            return None
        keys = data.frame[S.PATIENT_KEY].unique()
        if len(keys) > SPAN_LOOKUPS:
            rows = self.history_index.frame.filter(pl.col(S.PATIENT_KEY).is_in(keys.implode()))
        else:
            rows = self.history_index.rows_of(keys.to_list())
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
        return self.appointments_of_value(parse_json(body))

    def appointments_of_value(self, value: object) -> loader.Appointments:
        """:meth:`appointments_of_json` of a parsed JSON body."""
        if fhir.is_bundle(value):
            data = loader.load_bundle(value, REQUEST, schema=self.schema)
        else:
            data = loader.load_records(records_of(value), REQUEST, schema=self.schema)
        self.model.check_fits(data)
        return data

    def score_json(self, body: bytes, policy: policies.Policy | None = None) -> dict:
        """``POST /score``: the scores of the appointments in a JSON body, in its order."""
        value = parse_json(body)
        rows = self.score_few_rows(value, policy)
        if rows is None:
            rows = rows_json(self.score(self.appointments_of_value(value), policy))
        policy = policy or policies.MaxF1()
        return {"policy": policy.name, "rule": policy.describe(self.model.threshold), "scores": rows}

    def score_few_rows(self, value: object, policy: policies.Policy | None = None) -> list[dict] | None:
        """:meth:`score_json`'s rows (:func:`rows_json` of :meth:`score`) of a parsed JSON body
        by the few-row path (:mod:`noshow.data.features_rows`), or None where that path does not
        apply: a model read through a schema file, a FHIR bundle, over :data:`FEW_ROWS` records, or
        a value not in its canonical form (the loader then reads it, or says what is wrong)."""
        if self.schema is not None or fhir.is_bundle(value):
            return None
        records = records_of(value)
        rows = typed_records(records) if len(records) <= FEW_ROWS else None
        if rows is None:
            return None
        raw = raw_rows(rows, self.history_index)
        # What scoring.score does after the raw features, on arrays already in hand.
        model, backend, device = self.model, self.settings.backend, self.settings.device
        encoded = model.pipeline.encode(raw, model.config.np_dtype)
        day, ids = np.asarray(rows.day, np.int32), np.asarray(rows.appointment_id, np.int64)
        probability, flagged, ranks = scoring.decide(model, encoded, day, ids, policy or policies.MaxF1(), backend, device)
        _, sizes = reasons.reason_sizes(model, raw, backend, device, encoded)
        columns = (rows.appointment_id, rows.patient_id, [_iso_day(d) for d in rows.day],
                   np.round(probability, scoring.PROBABILITY_DECIMALS).tolist(), ranks.tolist(), flagged.tolist(),
                   few_reason_strings(raw, sizes, model.pipeline.spec))
        return [dict(zip(scoring.SCORE_COLUMNS, values)) for values in zip(*columns)]

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
    try:
        return datetime.date.fromisoformat(day)
    except ValueError:
        raise NoshowError(f"day: {day!r} is not a date like 2016-06-08") from None


def few_reason_strings(raw: pl.DataFrame, sizes: np.ndarray, spec) -> list[str]:
    """:func:`noshow.clinic.reasons.reason_strings` of a few rows, row by row from its own parts
    (the groups cited, their words, the sizes' text): its column-wise form costs polars calls per
    group, which for one row are the whole cost. ``raw`` holds ``spec.raw_columns``; ``sizes`` (n, groups)."""
    names = list(spec.groups)
    cited = reasons.top_reasons(sizes)
    shown = iter(reasons.size_texts(np.array([sizes[i, g] for i, row in enumerate(cited) for g in row])).to_list())
    out = []
    for row, groups in zip(raw.iter_rows(named=True), cited):
        parts = [f"{reasons.describe(names[g], row, spec)} ({next(shown)})" for g in groups]
        out.append(reasons.SEPARATOR.join(parts) if parts else reasons.NO_RAISE)
    return out


def _iso_day(day: int) -> str:
    """A day number (days since 1970) as ``2016-04-29``, as polars writes a date."""
    return datetime.date.fromordinal(day + EPOCH_ORDINAL).isoformat()


EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


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
