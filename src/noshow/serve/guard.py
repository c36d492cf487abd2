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
    """ASGI middleware: token check, then the body limit (see the module's docstring)."""

    def __init__(self, app, token: str | None, max_body_bytes: int):
        self.app, self.token, self.max_body_bytes = app, token, max_body_bytes
        self._expected = f"Bearer {token}".encode() if token else None

    def authorized(self, headers: dict[bytes, bytes]) -> bool:
        given = headers.get(b"authorization", b"")
        return hmac.compare_digest(given, self._expected)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self._expected and not is_public(scope["path"]) and not self.authorized(headers):
            return await _answer(send, 401, "missing or wrong token: send the header 'Authorization: Bearer <token>'",
                                 ((b"www-authenticate", b"Bearer"),))
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
