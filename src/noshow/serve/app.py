"""The FastAPI application: endpoints, errors as JSON, the staff page.

:func:`create_app` builds it around one :class:`~noshow.serve.service.Service` (model loaded and
verified once). Scoring runs in one of a few worker threads so that the event loop keeps answering
other requests meanwhile; reading the body stays on the loop, where the size limit of
:mod:`noshow.serve.guard` applies as it streams in.

Every refusal is JSON ``{"error": "<message>"}``: a user's mistake (:class:`NoshowError`, the same
message the command line prints) is 400, a body over the limit 413, a missing token 401.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from noshow.clinic.call_list import STYLE
from noshow.errors import NoshowError
from noshow.serve import schemas
from noshow.serve.guard import LIST_STYLE, Guard
from noshow.serve.service import (
    REQUEST,
    Service,
    Settings,
    model_facts,
    policy_from_query,
    policy_parameters,
    rows_csv,
    rows_json,
)
from noshow.serve.store_api import add_store_routes, audit_list, require_analyst, user_of

PAGE = Path(__file__).with_name("page")
SETTINGS_ENV = "NOSHOW_SERVE_SETTINGS"  # how `noshow serve --workers N` hands its settings to each worker
CSV_TYPE = "text/csv"
# Threads that score at once. The maths holds the interpreter lock most of the time, so more threads
# would not score faster; each would keep its own memory pools (the resident memory then grows
# with every new thread under load).
SCORING_THREADS = 4
_limiter: list[anyio.CapacityLimiter] = []


async def run_in_threadpool(function, *args):
    """``function(*args)`` in one of :data:`SCORING_THREADS` worker threads, off the event loop."""
    if not _limiter:  # made in the event loop, on first use
        _limiter.append(anyio.CapacityLimiter(SCORING_THREADS))
    return await anyio.to_thread.run_sync(lambda: function(*args), limiter=_limiter[0])


ERRORS = {status: {"model": schemas.Error, "description": text} for status, text in (
    (400, "malformed input: the message the command line gives for the same rows"),
    (401, "a token is set and the request did not carry it"), (413, "request body over --max-body-mb"))}

DESCRIPTION = """Scores medical appointments for their risk of a no-show with a `noshow` model file,
exactly as `noshow predict` does, and makes a day's call list under a flagging policy.

For prioritising reminders and support only: never to deny, penalise or overbook care without human
review. When the service has a token, send `Authorization: Bearer <token>` with every request."""


def _policy_query() -> list[dict]:
    """The policy flags as documented query parameters (names, types and help from the CLI's flags)."""
    kinds = {int: "integer", float: "number"}
    return [{"name": a.dest, "in": "query", "required": False, "description": f"as --{a.dest.replace('_', '-')}: {a.help}",
             "schema": {"type": kinds[a.type]}} for a in policy_parameters()]


def _appointments_body(csv: bool) -> dict:
    ref = {"$ref": "#/components/schemas/Appointment"}
    content = {"application/json": {"schema": {"anyOf": [ref, {"type": "array", "items": ref}]}}}
    if csv:
        content["multipart/form-data"] = {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary", "description": "appointments CSV (plain or gzip)"}}}}
        content[CSV_TYPE] = {"schema": {"type": "string"}}
    return {"requestBody": {"required": True, "content": content}}


def _error(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _handle_errors(app: FastAPI) -> None:
    @app.exception_handler(NoshowError)
    async def user_error(request: Request, exc: NoshowError):
        return _error(400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return _error(400, f"{where}: {first.get('msg', 'invalid request')}")


async def _appointments(request: Request, service: Service):
    """The appointments a request carries: an uploaded CSV file (multipart field ``file``), a CSV
    body (``text/csv``), JSON records, or a FHIR ``Bundle``; all validated by the loader as files are,
    through the model's schema, and checked to fit the model."""
    from noshow.data import loader

    def fitted(data):
        service.model.check_fits(data)
        return data

    schema = service.schema

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise NoshowError(f"{REQUEST}: no file in the form field 'file'")
        raw = await upload.read()
        name = os.path.basename(upload.filename or "upload.csv")
        return await run_in_threadpool(lambda: fitted(loader.load_bytes(raw, name, schema=schema)))
    body = await request.body()
    if kind == CSV_TYPE:
        return await run_in_threadpool(lambda: fitted(loader.load_bytes(body, REQUEST, schema=schema)))
    return await run_in_threadpool(service.appointments_of_json, body)


def _wants_csv(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise NoshowError(f"format: {fmt!r} is neither 'json' nor 'csv'")
        return fmt == "csv"
    return CSV_TYPE in request.headers.get("accept", "")


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    """The application serving ``settings.model_path`` (or an already loaded ``service``)."""
    from noshow import __version__

    service = service or Service(settings)
    # No /docs or /redoc: their pages load scripts from a CDN; /openapi.json is the description.
    app = FastAPI(title="noshow", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.service = service
    _handle_errors(app)

    @app.get("/health", response_model=schemas.Health, summary="liveness: the service is up")
    async def health():
        return {"status": "ok"}

    @app.get("/model", summary="the model card's facts: version, backend, training data, metrics, threshold, policy",
             responses={k: v for k, v in ERRORS.items() if k == 401})
    async def model():
        return model_facts(service)

    @app.post("/score", summary="score one appointment or a batch",
              description="Send one appointment (a JSON object with the file's column names) or a list of them. "
                          "Answers the calibrated probability of a no-show, the rank within its day among the "
                          "appointments sent, the flag under the model's max-F1 threshold (or the policy given "
                          "as query parameters) and the reasons, in the order sent.",
              openapi_extra={**_appointments_body(csv=False), "parameters": _policy_query()},
              responses={200: {"model": schemas.Scores}, **ERRORS})
    async def score(request: Request):
        policy = policy_from_query(dict(request.query_params))
        body = await request.body()
        return JSONResponse(await run_in_threadpool(service.score_json, body, policy))

    @app.post("/call-list", summary="a day's call list under a policy",
              description="Send the appointments as a CSV file (multipart field `file`, or a `text/csv` body) or as "
                          "JSON records; give the policy as query parameters named as the command line's flags "
                          "(none: the model's max-F1 threshold), `day` to list one day of the file (its other rows "
                          "then count as the patients' history), and `format=csv` (or `Accept: text/csv`) for CSV. "
                          "Answers the flagged appointments by day, highest risk first, with their reasons.",
              openapi_extra={**_appointments_body(csv=True), "parameters": [
                  *_policy_query(),
                  {"name": "day", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
                  {"name": "format", "in": "query", "required": False, "schema": {"enum": ["json", "csv"]}}]},
              responses={200: {"model": schemas.CallList, "content": {CSV_TYPE: {}}}, **ERRORS})
    async def call_list(request: Request):
        policy = policy_from_query(dict(request.query_params))
        as_csv = _wants_csv(request)
        data = await _appointments(request, service)
        user = user_of(request)
        if as_csv and service.store is not None:
            require_analyst(request)  # callers see the list on the page; analysts download it
        listed, info = await run_in_threadpool(service.call_list, data, policy, request.query_params.get("day"),
                                               user.name if user else "anonymous")
        if service.store is not None:
            await run_in_threadpool(audit_list, service, request, "download_list" if as_csv else "read_list",
                                    sorted({datetime.date.fromisoformat(d["day"]) for d in info["days_in_file"]}
                                           if not info["day"] else {datetime.date.fromisoformat(info["day"])}))
        if as_csv:
            return Response(rows_csv(listed), media_type=CSV_TYPE,
                            headers={"content-disposition": 'attachment; filename="call-list.csv"'})
        return JSONResponse({**info, "appointments": rows_json(listed)})

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(PAGE / "index.html")

    @app.get(LIST_STYLE, include_in_schema=False)
    async def list_style():
        # The printable call list's look (predict --html), for the page's list: one stylesheet.
        return Response(STYLE, media_type="text/css")

    add_store_routes(app, service, run_in_threadpool)
    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    _add_schemas(app)
    app.add_middleware(Guard, token=settings.token, max_body_bytes=settings.max_body_bytes, store=service.store)
    return app


def _add_schemas(app: FastAPI) -> None:
    """Put the models that only the hand-written request bodies name into the OpenAPI components."""
    original = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Appointment"] = \
                schemas.Appointment.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def app_from_environment() -> FastAPI:
    """The application for one of ``noshow serve --workers N``'s worker processes (uvicorn imports
    it by name in each): its settings come from the parent in :data:`SETTINGS_ENV` as JSON."""
    return create_app(Settings(**json.loads(os.environ[SETTINGS_ENV])))
