"""The benchmark's load generator: keep-alive HTTP/1.1 connections on asyncio, responses parsed by
httptools (the C parser uvicorn itself uses).

Why not httpx: the load generator shares the machine's two cores with the server it measures, so
every millisecond it spends per request is added to the latency it reports (at concurrency 1) or
taken from the server (at 32). Measured on the same 200 questions against the same server: httpx's
async client reported a c=1 p50 of 10.8 ms, this client 8.1 ms, with the server's own time
(Server-Timing) 7.9 ms. Only what the harness needs: POST one JSON body, read status, headers and
body; no redirects, TLS or chunked uploads.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        reply = Reply(self._parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body = {}, []
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()

    def send(self, request: bytes) -> asyncio.Future[Reply]:
        if self._transport is None or self.closed:
            raise ConnectionError("the connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()


def post_json(host: str, path: str, payload: object) -> bytes:
    """The bytes of one POST request with a JSON body."""
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def server_time(headers: dict[bytes, bytes]) -> float | None:
    """Seconds the server says it spent (``Server-Timing: app;dur=<ms>``), if it says."""
    for part in headers.get(b"server-timing", b"").decode("latin-1").split(","):
        name, _, params = part.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:]) / 1000
    return None


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds per request, failures included
    server: list[float] = field(default_factory=list)  # the server's own seconds per answered request
    failures: int = 0  # non-200 replies, errors and timeouts
    seconds: float = 0.0  # wall time of the whole run


async def drive(base_url: str, questions: Sequence[str], total: int, concurrency: int, *, timeout: float = 60.0) -> Run:
    """``total`` POST /v1/ask requests cycling through ``questions``, ``concurrency`` at a time, each
    concurrent client on its own keep-alive connection (reopened after an error)."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    authority = f"{host}:{port}"
    requests = [post_json(authority, "/v1/ask", {"question": question}) for question in questions]
    loop = asyncio.get_running_loop()
    run = Run()
    next_index = 0

    async def client() -> None:
        nonlocal next_index
        connection: _Connection | None = None
        try:
            while next_index < total:
                request = requests[next_index % len(requests)]
                next_index += 1
                started = time.perf_counter()
                try:
                    if connection is None or connection.closed:
                        _, connection = await loop.create_connection(_Connection, host, port)
                    reply = await asyncio.wait_for(connection.send(request), timeout)
                except OSError:  # refused, reset or timed out (TimeoutError is an OSError)
                    run.failures += 1
                    if connection is not None:
                        connection.close()
                    connection = None
                else:
                    if reply.status != 200:
                        run.failures += 1
                    else:
                        spent = server_time(reply.headers)
                        if spent is not None:
                            run.server.append(spent)
                run.latencies.append(time.perf_counter() - started)
        finally:
            if connection is not None:
                connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - started
    return run
