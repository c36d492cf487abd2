"""Starting the service: the safety checks, then uvicorn (``noshow serve``)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket

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
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("noshow.serve.app:app_from_environment", factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[listening_socket(host, port)]).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn's worker processes to share, made as uvicorn makes it but
    with its protocol named: connections accepted from it inherit ``proto``, and asyncio turns
    Nagle's algorithm off (TCP_NODELAY) only on sockets that say IPPROTO_TCP. uvicorn's own
    ``bind_socket`` leaves ``proto`` at 0, so that each answer's body waited for the client's
    delayed acknowledgement: about 40 ms a request on Linux (a known uvicorn bug, still open upstream)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NoshowError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock
