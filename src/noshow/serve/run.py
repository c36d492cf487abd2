"""Starting the service: the safety checks, then uvicorn (``noshow serve``)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket
import sys

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
                          f"${TOKEN_ENV} (or add users to --db with noshow users add) "
                          f"(requests then need 'Authorization: Bearer <token>'), or keep the default "
                          f"--host 127.0.0.1")


def serve(settings: Settings, host: str, port: int, workers: int = 1, access_log: bool = True) -> None:
    """Check, load the model (a bad file is a one-line error before anything listens), and serve."""
    import uvicorn

    from noshow.serve.app import SETTINGS_ENV, create_app

    service = Service(settings)
    # People's own tokens (noshow users add) guard a store's service as the one --token does.
    check_exposure(host, settings.token or _has_users(service))
    # Bound here, for one worker as for several: a port in use is then a one-line error too.
    sock = listening_socket(host, port)
    # uvicorn says where it listens only when it binds the socket itself.
    address = f"[{host}]" if ":" in host else host
    print(f"noshow: serving http://{address}:{sock.getsockname()[1]}/ with {workers} worker(s); Ctrl+C stops",
          file=sys.stderr, flush=True)
    # uvicorn's access log line is the method, path and status: never a body or an ID.
    options = {"host": host, "port": port, "access_log": access_log, "log_level": "info"}
    if workers == 1:
        uvicorn.Server(uvicorn.Config(create_app(settings, service), **options)).run(sockets=[sock])
        return
    # Several processes: each worker imports the application by name and loads the model itself;
    # the supervisor keeps no copy (it was loaded above only so that a bad file stops the start).
    del service
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("noshow.serve.app:app_from_environment", factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[sock]).run()


def _has_users(service: Service) -> bool:
    from noshow.store.repository import has_users

    return service.store is not None and has_users(service.store)


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for the service (shared by uvicorn's worker processes), made as uvicorn makes it but
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
