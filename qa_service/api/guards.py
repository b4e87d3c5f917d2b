"""HTTP guards in front of the routes: body size and content type limits, per-client rate limits,
security headers and request ids. Pure ASGI (no FastAPI import), so they run before any parsing."""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from qa_service.ops.logs import request_id as current_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Added to every response that does not set the header itself (the widget's files, for one, may be
# loaded by other sites: they send Cross-Origin-Resource-Policy: cross-origin).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-site"),
]
JSON_ENDPOINTS = ("/v1/ask", "/v1/feedback")  # POST bodies: JSON only


class RequestIds:
    """Random request ids (32 hex digits, as ``uuid4().hex``: they reveal nothing, not even how many
    requests came before), drawn from a block of random bytes read once per ``block`` ids: reading
    the system's random source for each request cost ~16 µs at request pace (a system call; docs/benchmarks.md,
    eighth session). A forked worker starts a block of its own, so no two processes share ids."""

    def __init__(self, block: int = 256) -> None:
        self._block = block
        self._ids: Iterator[str] = iter(())
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._ids = iter(())

    def __call__(self) -> str:
        for found in self._ids:  # next() of a list iterator is atomic: threads never get one id twice
            return found
        digits = os.urandom(16 * self._block).hex()
        self._ids = iter([digits[start : start + 32] for start in range(0, len(digits), 32)])
        return next(self._ids)


new_request_id = RequestIds()
_PLAIN_ID = re.compile(rb"[A-Za-z0-9._:-]+")


class TokenBuckets:
    """Per-client token buckets: ``rate`` requests per minute, bursts up to ``burst``. Bounded memory:
    the least recently seen clients are forgotten first."""

    def __init__(
        self, per_minute: float, burst: int, *, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = self._clock()
        with self._lock:
            tokens, seen = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


async def _reply(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guards:
    """Wraps the app: limits are checked before a route runs, headers added to every response."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, buckets: TokenBuckets | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        given = headers.get(b"x-request-id", b"")[:64]
        # a caller's id is echoed and logged only if it is plain (letters, digits, "-", "_", ".", ":")
        request_id = given.decode("ascii") if _PLAIN_ID.fullmatch(given) else new_request_id()
        token = current_request_id.set(request_id)
        extra = [*SECURITY_HEADERS, (b"x-request-id", request_id.encode("latin-1"))]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message["headers"] = [*headers, *(header for header in extra if header[0] not in present)]
            await send(message)

        path, method = scope.get("path", ""), scope.get("method", "GET")
        if method == "POST" and path in JSON_ENDPOINTS:
            if self.buckets is not None:
                client = (scope.get("client") or ("unknown", 0))[0]
                wait = self.buckets.take(str(client))
                if wait > 0:
                    retry = str(max(1, math.ceil(wait))).encode()
                    await _reply(
                        send_with_headers,
                        429,
                        "rate_limited",
                        "too many requests; try again later",
                        [(b"retry-after", retry)],
                    )
                    return
            content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if content_type != b"application/json":
                await _reply(send_with_headers, 415, "unsupported_media_type", "send the body as application/json", [])
                return
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _reply(
                    send_with_headers, 413, "payload_too_large", f"the body is over {self.max_body_bytes} bytes", []
                )
                return
            body = await self._read_body(receive)
            if body is None:
                await _reply(
                    send_with_headers, 413, "payload_too_large", f"the body is over {self.max_body_bytes} bytes", []
                )
                return
            receive = _replay(body, receive)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            current_request_id.reset(token)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it grows past the limit (chunked bodies have no length)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
