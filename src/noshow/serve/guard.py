"""What keeps the service safe by default, as one ASGI middleware around the application.

- A bearer token: when the service has one, every request but the health check and the page's own
  files (which hold no patient data) must carry ``Authorization: Bearer <token>``, else 401.
- A limit on request bodies: a declared ``Content-Length`` over it is refused at once, and the
  bytes actually received are counted as they stream in, so a body sent without a length (chunked)
  is cut off at the limit too: 413 either way.

- No trace of an unexpected error reaches the client or the log: its message could hold a
  patient's data, so the log names only the kind of error and the path, and the client gets 500 JSON.

Request bodies and patient IDs never reach a log.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.exceptions import HTTPException

LIST_STYLE = "/call-list.css"
PUBLIC_PATHS = ("/", "/health", "/favicon.ico", LIST_STYLE)
PUBLIC_PREFIXES = ("/page/",)
INTERNAL_ERROR = "internal error: the service could not answer this request (its log names the kind of error)"
log = logging.getLogger("noshow.serve")


class BodyTooLarge(HTTPException):
    """The body grew past the limit while it was being read (answered 413 by the application)."""

    def __init__(self, limit_bytes: int):
        super().__init__(413, f"request body over the limit of {limit_bytes:,} bytes (--max-body-mb)")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def _answer(send, status: int, message: str, headers: tuple = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: token check, then the body limit (see the module's docstring).

    With a store (``serve --db``), each person's own token (``noshow users add``) names them: the
    request then carries its user in ``scope["state"]["user"]``. The service's one ``--token``
    stays valid, as an analyst named "token"; a service with neither token nor users is open to
    this machine, as before, its requests made by "anonymous" (an analyst)."""

    def __init__(self, app, token: str | None, max_body_bytes: int, store=None):
        self.app, self.token, self.max_body_bytes, self.store = app, token, max_body_bytes, store
        self._expected = f"Bearer {token}".encode() if token else None
        self._has_users = False  # once a user exists, tokens are required (users are never removed)

    def authorized(self, headers: dict[bytes, bytes]) -> bool:
        given = headers.get(b"authorization", b"")
        return hmac.compare_digest(given, self._expected)

    def identify(self, headers: dict[bytes, bytes]):
        """The request's user (:class:`noshow.store.repository.User`), or None: refused."""
        from noshow.store.repository import User, has_users, user_for_token

        if self._expected and self.authorized(headers):
            return User("token", "analyst")
        given = headers.get(b"authorization", b"").decode("latin-1")
        if self.store is not None and given.startswith("Bearer "):
            found = user_for_token(self.store, given.removeprefix("Bearer ").strip())
            if found is not None:
                return found
        if self._expected is None:
            self._has_users = self._has_users or (self.store is not None and has_users(self.store))
            if not self._has_users:
                return User("anonymous", "analyst")
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if not is_public(scope["path"]):
            if self.store is None and self._expected is None:
                user = None
            else:
                import anyio

                user = await anyio.to_thread.run_sync(self.identify, headers)
                if user is None:
                    return await _answer(send, 401, "missing or wrong token: send the header 'Authorization: Bearer <token>'",
                                         ((b"www-authenticate", b"Bearer"),))
            scope.setdefault("state", {})["user"] = user
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _answer(send, 413, BodyTooLarge(self.max_body_bytes).detail)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception as exc:  # a bug: never its message or traceback (they may hold patient data)
            log.error("internal error %s answering %s %s", type(exc).__name__, scope["method"], scope["path"])
            if not started:
                await _answer(send, 500, INTERNAL_ERROR)
