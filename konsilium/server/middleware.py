"""Plain ASGI middleware (no per-request task switching, streams untouched): API keys and a body size limit."""

from __future__ import annotations

import hmac
import json

from starlette.exceptions import HTTPException


def _error(status: int, message: str, code: str, type_: str = "invalid_request_error") -> tuple[int, bytes]:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return status, json.dumps(body).encode()


async def _send_error(send, status: int, body: bytes, extra_headers=()) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class APIKeyMiddleware:
    """Every request needs `Authorization: Bearer <key>` with one of `keys` (compared in constant time)."""

    def __init__(self, app, keys: tuple[str, ...]):
        self.app, self.keys = app, tuple(key.encode() for key in keys)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys:
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or ()).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        token = token.strip()
        if scheme.lower() == b"bearer" and token and any(hmac.compare_digest(token, key) for key in self.keys):
            return await self.app(scope, receive, send)
        message = (
            "Incorrect API key provided." if token else "You didn't provide an API key: send Authorization: Bearer KEY."
        )
        status, body = _error(401, message, "invalid_api_key")
        await _send_error(send, status, body, [(b"www-authenticate", b"Bearer")])


class BodyTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing re-raises it as is (other errors become a generic 400)."""

    code = "request_too_large"

    def __init__(self, limit: int):
        super().__init__(413, f"The request body is larger than the server's limit of {limit:,} bytes.")


class BodySizeLimitMiddleware:
    """Refuse bodies over `limit` bytes with 413, by Content-Length up front or while a chunked body arrives."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:  # read outside FastAPI's handlers
            if not started:
                await self._refuse(send)

    async def _refuse(self, send):
        status, body = _error(413, BodyTooLarge(self.limit).detail, BodyTooLarge.code)
        await _send_error(send, status, body)
