"""The service's endpoints on the clinic's store (``noshow serve --db``): calls, who is asking, the monitor.

- ``GET /me``: the requesting user's name and role, and whether results are stored (the page asks).
- ``POST /calls``: record call results (one object, a list, or ``{"calls": [...]}``), each for an
  appointment on a list recorded for its day; a result whose ``client_id`` is stored already is
  not recorded twice (the page resends its queue after a dropped connection).
- ``GET /calls?day=YYYY-MM-DD``: the day's call attempts, oldest first, with who made them.
- ``GET /monitor``: realised performance and the call's effect (analysts only), JSON or
  ``?format=html``.

Lists read or downloaded are written to the audit log by the application (:func:`audit_list`), with
the user and the day, never a patient.
"""

from __future__ import annotations

import datetime
import json

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from noshow.errors import NoshowError
from noshow.serve.service import REQUEST, Service, parse_json

NO_STORE = "this service keeps no store: start it with --db FILE (or a postgresql:// URL) to record calls"


def user_of(request: Request):
    """The request's user as the guard identified them (None on a service without store or token)."""
    return request.scope.get("state", {}).get("user")


def _require_store(service: Service):
    if service.store is None:
        raise HTTPException(404, NO_STORE)
    return service.store


def require_analyst(request: Request) -> None:
    user = user_of(request)
    if user is not None and not user.is_analyst:
        raise HTTPException(403, f"user {user.name!r} is a caller; this needs an analyst")


def _day(text: str | None, where: str = "day") -> datetime.date:
    if not text:
        raise NoshowError(f"{where}: give the day, like 2016-06-08")
    try:
        return datetime.date.fromisoformat(str(text))
    except ValueError:
        raise NoshowError(f"{where}: {text!r} is not a date like 2016-06-08") from None


def _when(text) -> datetime.datetime | None:
    if text is None:
        return None
    try:
        when = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise NoshowError(f"called_at: {text!r} is not a time like 2016-06-08T09:30:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def calls_of(body: bytes):
    """The :class:`~noshow.store.repository.Call` list a ``POST /calls`` body holds."""
    from noshow.store.repository import Call

    value = parse_json(body)
    if isinstance(value, dict) and set(value) == {"calls"}:
        value = value["calls"]
    records = [value] if isinstance(value, dict) else value
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise NoshowError(f"{REQUEST}: expected a call result (a JSON object with appointment_id, day and result) "
                          f"or a list of them")
    calls = []
    for i, record in enumerate(records):
        where = f"{REQUEST}: call {i + 1}"
        try:
            appointment = int(record["appointment_id"])
            calls.append(Call(appointment, _day(record.get("day"), f"{where}: day"), str(record["result"]),
                              str(record.get("note") or ""), record.get("client_id"), _when(record.get("called_at"))))
        except KeyError as missing:
            raise NoshowError(f"{where}: no {missing.args[0]!r}") from None
        except (TypeError, ValueError):
            raise NoshowError(f"{where}: appointment_id {record.get('appointment_id')!r} is not an integer") from None
    return calls


def audit_list(service: Service, request: Request, action: str, days) -> None:
    """Record that the request's user read or downloaded the lists of ``days`` (no patient data)."""
    from noshow.store.repository import audit

    user = user_of(request)
    for day in days:
        audit(service.store, user.name if user else "anonymous", action, day)


def add_store_routes(app: FastAPI, service: Service, run_in_threadpool) -> None:
    """The endpoints of the module's docstring, on ``app``."""
    from noshow.store import repository

    @app.get("/me", summary="who is asking: the user's name and role, and whether call results are stored")
    async def me(request: Request):
        user = user_of(request)
        return {"user": user.name if user else None, "role": user.role if user else None,
                "store": service.store is not None}

    @app.post("/calls", summary="record call results",
              description="Send one result (a JSON object with `appointment_id`, `day`, `result` in reached, no_answer, "
                          "wrong_number, rescheduled, cancelled; optional `note`, `client_id`, `called_at`) or a list. "
                          "Answers how many were recorded (a `client_id` already stored is not recorded again).")
    async def record_calls(request: Request):
        store = _require_store(service)
        calls = calls_of(await request.body())
        user = user_of(request)
        recorded = await run_in_threadpool(repository.record_calls, store, calls, user.name if user else "anonymous")
        return {"recorded": recorded, "sent": len(calls)}

    @app.get("/calls", summary="a day's call results, oldest first, with who made each call")
    async def day_calls(request: Request):
        store = _require_store(service)
        day = _day(request.query_params.get("day"))
        return {"day": str(day), "calls": await run_in_threadpool(repository.calls_on, store, day)}

    @app.get("/monitor", summary="realised performance, calibration in practice and the call's effect (analysts)")
    async def monitor(request: Request):
        from noshow.store import monitor as M
        from noshow.store.monitor_report import monitor_html

        store = _require_store(service)
        require_analyst(request)
        audit_list(service, request, "read_monitor", [None])
        result = await run_in_threadpool(M.monitor, store)
        if request.query_params.get("format") == "html":
            return HTMLResponse(await run_in_threadpool(monitor_html, result))
        return JSONResponse(json.loads(json.dumps(result, default=str)))
