"""Starting the service: the safety checks, then uvicorn (``noshow serve``)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os

from noshow.errors import NoshowError
from noshow.serve.service import Service, Settings

TOKEN_ENV = "NOSHOW_TOKEN"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise NoshowError(f"--host {host}: other machines could reach the service; set a token with --token or "
                          f"${TOKEN_ENV} (requests then need 'Authorization: Bearer <token>'), or keep the default "
                          f"--host 127.0.0.1")


def serve(settings: Settings, host: str, port: int, workers: int = 1, access_log: bool = True) -> None:
    """Check, load the model (a bad file is a one-line error before anything listens), and serve."""
    import uvicorn

    from noshow.serve.app import SETTINGS_ENV, create_app

    check_exposure(host, settings.token)
    service = Service(settings)
    # uvicorn's access log line is the method, path and status: never a body or an ID.
    options = {"host": host, "port": port, "access_log": access_log, "log_level": "info"}
    if workers == 1:
        uvicorn.run(create_app(settings, service), **options)
        return
    # Several processes: each worker imports the application by name and loads the model itself.
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    uvicorn.run("noshow.serve.app:app_from_environment", factory=True, workers=workers, **options)
