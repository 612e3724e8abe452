"""Plain ASGI middleware (no per-request task switching, streams untouched): allowed Host names, API keys, JSON
bodies only, and a body size limit."""

from __future__ import annotations

import hmac
import ipaddress
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
    """Every API request needs `Authorization: Bearer <key>` with one of `keys` (compared in constant time). The
    web UI's page and assets (outside `/v1`) hold no data and load without one: its login form asks for the key."""

    def __init__(self, app, keys: tuple[str, ...]):
        self.app, self.keys = app, tuple(key.encode() for key in keys)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or _is_ui_asset(scope.get("path", "")):
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


def _is_ui_asset(path: str) -> bool:
    """The web UI's page (`/`) and its assets (`/ui/...`): public files, no data."""
    return path in ("/", "/ui") or path.startswith("/ui/")


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


# A bind on every interface: clients name the machine by any of its addresses.
WILDCARD_BINDS = frozenset({"0.0.0.0", "::"})


def host_name(value: str) -> str:
    """A Host header (or a configured name) without its port, lowercased: `[::1]:8000` -> `::1`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        value = value.partition(":")[0]
    return value.rstrip(".")


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class HostCheckMiddleware:
    """Answer only requests addressed to loopback names or to `allowed` ones, else 403.

    This is what stops DNS rebinding: a web page whose domain is made to resolve to 127.0.0.1 can reach the
    server, but its requests carry that domain in `Host`. An IP address cannot be rebound, so when the server
    binds every interface (0.0.0.0 or ::), any IP literal is accepted too. `*` accepts every name (unsafe).
    """

    def __init__(self, app, allowed: tuple[str, ...] = ()):
        names = {host_name(name) for name in allowed if name.strip()}
        self.app = app
        self.any_name = "*" in names
        self.any_ip = bool(names & WILDCARD_BINDS)
        self.names = names - WILDCARD_BINDS - {"*"}

    def allows(self, name: str) -> bool:
        if name == "localhost" or name in self.names:
            return True
        ip = _ip(name)
        return ip is not None and (ip.is_loopback or self.any_ip)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self.any_name:
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or ()).get(b"host")
        # No Host at all is an HTTP/1.0 tool, never a browser (browsers always send one).
        if given is None or self.allows(host_name(given.decode("latin-1"))):
            return await self.app(scope, receive, send)
        shown = given.decode("latin-1")[:100]
        message = (
            f"Host {shown!r} is not allowed: this server answers to localhost and loopback addresses only, so that "
            "web pages cannot reach it by DNS rebinding. Add the name to server.allowed_hosts in konsilium.yaml "
            "to serve it under that name."
        )
        status, body = _error(403, message, "host_not_allowed")
        await _send_error(send, status, body)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: bytes) -> bool:
    """`application/json` or a `+json` type, parameters (charset) aside: what FastAPI parses as JSON."""
    mime = content_type.decode("latin-1").partition(";")[0].strip().lower()
    main, _, sub = mime.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class JSONBodyMiddleware:
    """Refuse request bodies that are not declared JSON, before reading them.

    Besides a clear message for a forgotten header: a web page can post `text/plain` or a Blob without a content
    type to any address with no CORS preflight; only `application/json` needs one, which we never grant.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or ()).get(b"content-type")
        if given is not None and is_json(given):
            return await self.app(scope, receive, send)
        got = f"got {given.decode('latin-1')[:100]!r}" if given is not None else "it was missing"
        message = (
            f"The request body must be JSON sent with the header 'Content-Type: application/json' ({got}), e.g. "
            "curl -H 'content-type: application/json' -d '{...}'."
        )
        status, body = _error(400, message, "invalid_content_type")
        await _send_error(send, status, body)
